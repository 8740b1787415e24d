//! Server-side DESCRIBE, as cqlsh 6 sends it: `DESCRIBE KEYSPACES`,
//! `DESCRIBE [FULL] SCHEMA`, `DESCRIBE [ONLY] KEYSPACE ks`, `DESCRIBE TABLES`,
//! `DESCRIBE TABLE t`, `DESCRIBE TYPES`, `DESCRIBE TYPE t`,
//! `DESCRIBE FUNCTIONS`, `DESCRIBE AGGREGATES`, `DESCRIBE FUNCTION f`,
//! `DESCRIBE AGGREGATE a`, `DESCRIBE CLUSTER` and `DESCRIBE name`, each with
//! an optional `WITH INTERNALS` (tables then also show their dropped columns).
//!
//! The answer is rows of (keyspace_name, type, name, create_statement), the
//! shape cqlsh prints from; the CQL text comes from `system::describe`. Names
//! in the rows are CQL identifiers, quoted where needed, so a client can
//! paste them into a statement.
use storage::schema::{KeyspaceDef, Schema, TableDef};

use crate::error::{invalid, CqlError};
use crate::frame::{ColumnSpec, ColumnType, ResultMetadata, Rows, RowsWriter};
use crate::system::{self, NodeInfo};

/// A parsed DESCRIBE statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Describe {
    Keyspaces,
    Schema {
        full: bool,
        internals: bool,
    },
    /// `only`: the keyspace itself, without its types and tables.
    Keyspace {
        name: Option<String>,
        only: bool,
        internals: bool,
    },
    Tables,
    Table {
        keyspace: Option<String>,
        name: String,
        internals: bool,
    },
    Types,
    Type(Option<String>, String),
    Cluster,
    Functions,
    Aggregates,
    /// `DESCRIBE FUNCTION f` / `DESCRIBE AGGREGATE a` (`aggregate` tells which).
    Function {
        keyspace: Option<String>,
        name: String,
        aggregate: bool,
    },
    /// `DESCRIBE name`: a keyspace, or a table of the current keyspace.
    Name {
        keyspace: Option<String>,
        name: String,
        internals: bool,
    },
}

/// Parses `text` if it is a DESCRIBE statement; `None` if it is not one.
pub fn parse(text: &str) -> Option<Result<Describe, CqlError>> {
    let text = text.trim().trim_end_matches(';').trim();
    let mut words = text.split_whitespace();
    let first = words.next()?;
    if !first.eq_ignore_ascii_case("describe") && !first.eq_ignore_ascii_case("desc") {
        return None;
    }
    let words: Vec<&str> = words.collect();
    let with = words.iter().position(|w| w.eq_ignore_ascii_case("with"));
    let (rest, internals) = match with {
        Some(at) => match &words[at + 1..] {
            [w] if w.eq_ignore_ascii_case("internals") => (&words[..at], true),
            _ => return Some(Err(describe_syntax(&words))),
        },
        None => (&words[..], false),
    };
    Some(parse_words(rest, internals))
}

fn describe_syntax(words: &[&str]) -> CqlError {
    CqlError::Syntax(crate::parser::SyntaxError {
        line: 1,
        column: 0,
        message: format!(
            "no viable alternative at input 'DESCRIBE {}'",
            words.join(" ")
        ),
    })
}

fn name_parts(raw: &str) -> (Option<String>, String) {
    let unquote = |s: &str| {
        if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
            s[1..s.len() - 1].replace("\"\"", "\"")
        } else {
            s.to_ascii_lowercase()
        }
    };
    match raw.split_once('.') {
        Some((ks, name)) => (Some(unquote(ks)), unquote(name)),
        None => (None, unquote(raw)),
    }
}

fn parse_words(words: &[&str], internals: bool) -> Result<Describe, CqlError> {
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let named = |raw: &str| name_parts(raw);
    let keyspace = |name: Option<&str>, only: bool| Describe::Keyspace {
        name: name.map(|n| named(n).1),
        only,
        internals,
    };
    let function = |raw: &str, aggregate: bool| {
        let (keyspace, name) = named(raw);
        Describe::Function {
            keyspace,
            name,
            aggregate,
        }
    };
    Ok(match lower.as_slice() {
        ["keyspaces"] => Describe::Keyspaces,
        ["schema"] => Describe::Schema {
            full: false,
            internals,
        },
        ["full", "schema"] => Describe::Schema {
            full: true,
            internals,
        },
        ["keyspace"] => keyspace(None, false),
        ["keyspace", _] => keyspace(Some(words[1]), false),
        ["only", "keyspace"] => keyspace(None, true),
        ["only", "keyspace", _] => keyspace(Some(words[2]), true),
        ["tables"] | ["columnfamilies"] => Describe::Tables,
        ["table", _] | ["columnfamily", _] => {
            let (keyspace, name) = named(words[1]);
            Describe::Table {
                keyspace,
                name,
                internals,
            }
        }
        ["types"] => Describe::Types,
        ["type", _] => {
            let (ks, name) = named(words[1]);
            Describe::Type(ks, name)
        }
        ["cluster"] => Describe::Cluster,
        ["functions"] => Describe::Functions,
        ["aggregates"] => Describe::Aggregates,
        ["function", _] => function(words[1], false),
        ["aggregate", _] => function(words[1], true),
        [_] => {
            let (keyspace, name) = named(words[0]);
            Describe::Name {
                keyspace,
                name,
                internals,
            }
        }
        _ => return Err(describe_syntax(words)),
    })
}

fn text_spec(name: &str) -> ColumnSpec {
    ColumnSpec {
        keyspace: String::new(),
        table: "describe".to_string(),
        name: name.to_string(),
        ty: ColumnType::Varchar,
    }
}

/// One output row: (keyspace_name, type, name, create_statement).
struct Element {
    keyspace: String,
    kind: &'static str,
    name: String,
    create: String,
}

impl Element {
    /// A row for `name` in `keyspace`; names are stored as CQL identifiers.
    fn new(keyspace: &str, kind: &'static str, name: &str, create: String) -> Self {
        Element {
            keyspace: system::quote_ident(keyspace),
            kind,
            name: system::quote_ident(name),
            create,
        }
    }
}

fn table_cql(table: &TableDef, internals: bool) -> String {
    if internals {
        system::describe_table_with_internals(table)
    } else {
        system::describe_table(table)
    }
}

fn table_element(table: &TableDef, internals: bool) -> Element {
    let create = table_cql(table, internals);
    Element::new(&table.keyspace, "table", &table.name, create)
}

fn keyspace_elements(ks: &KeyspaceDef, internals: bool, out: &mut Vec<Element>) {
    let create = system::create_keyspace_cql(ks);
    out.push(Element::new(&ks.name, "keyspace", &ks.name, create));
    for udt in ks.types.values() {
        let create = system::describe_type(udt);
        out.push(Element::new(&ks.name, "type", &udt.name, create));
    }
    for table in ks.tables.values() {
        out.push(table_element(table, internals));
    }
}

fn find_keyspace<'s>(schema: &'s Schema, name: &str) -> Result<&'s KeyspaceDef, CqlError> {
    schema
        .keyspace(name)
        .ok_or_else(|| invalid(format!("'{name}' not found in keyspaces")))
}

fn find_table<'s>(ks: &'s KeyspaceDef, name: &str) -> Result<&'s TableDef, CqlError> {
    ks.tables
        .get(name)
        .map(|t| &**t)
        .ok_or_else(|| invalid(format!("'{name}' not found in keyspace '{}'", ks.name)))
}

fn current<'a>(ks: &'a Option<String>, session: Option<&'a str>) -> Result<&'a str, CqlError> {
    ks.as_deref()
        .or(session)
        .ok_or_else(|| invalid("No keyspace specified and no current keyspace"))
}

/// Runs a DESCRIBE against `schema` (user and system keyspaces).
pub fn execute(
    describe: &Describe,
    schema: &Schema,
    session_keyspace: Option<&str>,
    node: &NodeInfo,
) -> Result<Rows, CqlError> {
    let mut elements = Vec::new();
    match describe {
        Describe::Cluster => return cluster_rows(node),
        Describe::Keyspaces | Describe::Tables | Describe::Types => {
            listing(describe, schema, session_keyspace, &mut elements)?;
            return rows(elements, false);
        }
        Describe::Functions | Describe::Aggregates => return rows(elements, false),
        Describe::Schema { full, internals } => {
            let shown = |ks: &&KeyspaceDef| *full || !system::is_system_keyspace(&ks.name);
            for ks in schema.keyspaces.values().filter(shown) {
                keyspace_elements(ks, *internals, &mut elements);
            }
        }
        Describe::Keyspace {
            name,
            only,
            internals,
        } => {
            let ks = find_keyspace(schema, current(name, session_keyspace)?)?;
            keyspace_elements(ks, *internals, &mut elements);
            if *only {
                elements.truncate(1);
            }
        }
        Describe::Table {
            keyspace,
            name,
            internals,
        } => {
            let ks = find_keyspace(schema, current(keyspace, session_keyspace)?)?;
            elements.push(table_element(find_table(ks, name)?, *internals));
        }
        Describe::Type(ks, name) => {
            let ks = find_keyspace(schema, current(ks, session_keyspace)?)?;
            let udt = ks.types.get(name).ok_or_else(|| {
                invalid(format!(
                    "User defined type '{name}' not found in '{}'",
                    ks.name
                ))
            })?;
            elements.push(Element::new(
                &ks.name,
                "type",
                name,
                system::describe_type(udt),
            ));
        }
        Describe::Function {
            keyspace,
            name,
            aggregate,
        } => {
            // No user-defined functions or aggregates exist here, so a
            // named one is never found; the keyspace must still exist.
            let ks = find_keyspace(schema, current(keyspace, session_keyspace)?)?;
            let what = if *aggregate { "aggregate" } else { "function" };
            return Err(invalid(format!(
                "User defined {what} '{name}' not found in '{}'",
                ks.name
            )));
        }
        Describe::Name {
            keyspace,
            name,
            internals,
        } => match (keyspace, schema.keyspace(name)) {
            (None, Some(found)) => keyspace_elements(found, *internals, &mut elements),
            _ => {
                let ks = find_keyspace(schema, current(keyspace, session_keyspace)?)?;
                elements.push(table_element(find_table(ks, name)?, *internals));
            }
        },
    }
    rows(elements, true)
}

/// DESCRIBE KEYSPACES / TABLES / TYPES: names only, of the session's
/// keyspace when one is in use, else of every keyspace.
fn listing(
    describe: &Describe,
    schema: &Schema,
    session_keyspace: Option<&str>,
    out: &mut Vec<Element>,
) -> Result<(), CqlError> {
    let keyspaces: Vec<&KeyspaceDef> = match (describe, session_keyspace) {
        (Describe::Keyspaces, _) | (_, None) => schema.keyspaces.values().collect(),
        (_, Some(ks)) => vec![find_keyspace(schema, ks)?],
    };
    for ks in keyspaces {
        let names: Vec<(&'static str, &str)> = match describe {
            Describe::Keyspaces => vec![("keyspace", ks.name.as_str())],
            Describe::Tables => ks.tables.keys().map(|t| ("table", t.as_str())).collect(),
            _ => ks.types.keys().map(|t| ("type", t.as_str())).collect(),
        };
        for (kind, name) in names {
            out.push(Element::new(&ks.name, kind, name, String::new()));
        }
    }
    Ok(())
}

fn rows(elements: Vec<Element>, with_statements: bool) -> Result<Rows, CqlError> {
    let mut columns = vec![
        text_spec("keyspace_name"),
        text_spec("type"),
        text_spec("name"),
    ];
    if with_statements {
        columns.push(text_spec("create_statement"));
    }
    let mut writer = RowsWriter::new(columns.len());
    for e in &elements {
        writer.push_value(Some(e.keyspace.as_bytes()));
        writer.push_value(Some(e.kind.as_bytes()));
        writer.push_value(Some(e.name.as_bytes()));
        if with_statements {
            writer.push_value(Some(e.create.as_bytes()));
        }
        writer.end_row();
    }
    finish(writer, columns)
}

fn finish(writer: RowsWriter, columns: Vec<ColumnSpec>) -> Result<Rows, CqlError> {
    writer
        .finish(ResultMetadata {
            columns: columns.into(),
            paging_state: None,
            no_metadata: false,
        })
        .map_err(|e| CqlError::Server(e.to_string()))
}

fn cluster_rows(node: &NodeInfo) -> Result<Rows, CqlError> {
    let columns = vec![
        text_spec("cluster"),
        text_spec("partitioner"),
        text_spec("snitch"),
    ];
    let mut writer = RowsWriter::new(columns.len());
    writer.push_value(Some(node.cluster_name.as_bytes()));
    writer.push_value(Some(node.partitioner.as_bytes()));
    writer.push_value(Some(b"org.apache.cassandra.locator.SimpleSnitch"));
    writer.end_row();
    finish(writer, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyspace(name: &str) -> Describe {
        Describe::Keyspace {
            name: Some(name.into()),
            only: false,
            internals: false,
        }
    }

    #[test]
    fn parses_the_forms_cqlsh_sends() {
        assert!(parse("SELECT 1").is_none());
        assert_eq!(
            parse("DESCRIBE KEYSPACES").and_then(Result::ok),
            Some(Describe::Keyspaces)
        );
        assert_eq!(
            parse("desc table Ks.\"MyTable\";").and_then(Result::ok),
            Some(Describe::Table {
                keyspace: Some("ks".into()),
                name: "MyTable".into(),
                internals: false
            })
        );
        assert_eq!(
            parse("DESCRIBE FULL SCHEMA WITH INTERNALS").and_then(Result::ok),
            Some(Describe::Schema {
                full: true,
                internals: true
            })
        );
        assert_eq!(
            parse("DESCRIBE KEYSPACE ks1").and_then(Result::ok),
            Some(Describe::Keyspace {
                name: Some("ks1".into()),
                only: false,
                internals: false
            })
        );
        assert!(matches!(
            parse("DESCRIBE TABLE a b c"),
            Some(Err(CqlError::Syntax(_)))
        ));
    }

    #[test]
    fn describes_a_keyspace_with_its_tables() {
        let mut schema = Schema::default();
        schema.keyspaces.insert(
            "ks".into(),
            KeyspaceDef::new(
                "ks",
                [
                    (
                        "class".to_string(),
                        "org.apache.cassandra.locator.SimpleStrategy".to_string(),
                    ),
                    ("replication_factor".to_string(), "1".to_string()),
                ]
                .into(),
                true,
            ),
        );
        let node = NodeInfo::single(
            "c",
            "127.0.0.1".parse().expect("ip"),
            9042,
            uuid::Uuid::nil(),
            vec![0],
        );
        let rows = execute(&keyspace("ks"), &schema, None, &node).expect("describe");
        assert_eq!(rows.rows_count, 1);
        let text = String::from_utf8_lossy(&rows.rows_content);
        assert!(
            text.contains("CREATE KEYSPACE ks WITH replication"),
            "{text}"
        );
        assert!(execute(&keyspace("nope"), &schema, None, &node).is_err());
    }

    fn schema_of(statements: &[&str]) -> Schema {
        let mut schema = Schema::default();
        for (i, text) in statements.iter().enumerate() {
            let parsed = crate::parser::parse_statement(text).expect("parses");
            let micros = i64::try_from(i).expect("small") * 1000;
            schema = crate::ddl::apply(&schema, &parsed.statement, None, micros)
                .expect("applies")
                .schema;
        }
        schema
    }

    fn texts(rows: &Rows) -> String {
        String::from_utf8_lossy(&rows.rows_content).into_owned()
    }

    fn node() -> NodeInfo {
        let ip = "127.0.0.1".parse().expect("ip");
        NodeInfo::single("c", ip, 9042, uuid::Uuid::nil(), vec![0])
    }

    const QUOTED: &[&str] = &[
        "CREATE KEYSPACE \"Quoted_KS\" WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TYPE \"Quoted_KS\".\"udt_@@@\" (a int)",
        "CREATE TABLE \"Quoted_KS\".\"Quoted_TABLE\" (a int PRIMARY KEY, \"!@#$%\" int, b int)",
        "ALTER TABLE \"Quoted_KS\".\"Quoted_TABLE\" DROP b",
        "ALTER TABLE \"Quoted_KS\".\"Quoted_TABLE\" DROP \"!@#$%\"",
        "ALTER TABLE \"Quoted_KS\".\"Quoted_TABLE\" ADD \"!@#$%\" int",
    ];

    #[test]
    fn parses_only_internals_and_functions() {
        assert_eq!(
            parse("DESC ONLY KEYSPACE ks WITH INTERNALS").and_then(Result::ok),
            Some(Describe::Keyspace {
                name: Some("ks".into()),
                only: true,
                internals: true
            })
        );
        assert_eq!(
            parse("DESCRIBE FUNCTION ks.f").and_then(Result::ok),
            Some(Describe::Function {
                keyspace: Some("ks".into()),
                name: "f".into(),
                aggregate: false
            })
        );
        assert!(matches!(
            parse("DESCRIBE TABLE t WITH NONSENSE"),
            Some(Err(CqlError::Syntax(_)))
        ));
    }

    #[test]
    fn only_keyspace_leaves_out_types_and_tables() {
        let schema = schema_of(QUOTED);
        let describe = parse("DESC ONLY KEYSPACE \"Quoted_KS\"")
            .expect("describe")
            .expect("ok");
        let rows = execute(&describe, &schema, None, &node()).expect("rows");
        assert_eq!(rows.rows_count, 1);
        assert!(texts(&rows).contains("CREATE KEYSPACE \"Quoted_KS\" WITH"));
    }

    #[test]
    fn listings_quote_names() {
        let schema = schema_of(QUOTED);
        for (query, name) in [
            ("DESC KEYSPACES", "\"Quoted_KS\""),
            ("DESC TABLES", "\"Quoted_TABLE\""),
            ("DESC TYPES", "\"udt_@@@\""),
        ] {
            let describe = parse(query).expect("describe").expect("ok");
            let text = texts(&execute(&describe, &schema, None, &node()).expect("rows"));
            assert!(text.contains("\"Quoted_KS\""), "{query}: {text}");
            assert!(text.contains(name), "{query}: {text}");
        }
    }

    #[test]
    fn internals_show_dropped_columns() {
        let schema = schema_of(QUOTED);
        let table = "\"Quoted_KS\".\"Quoted_TABLE\"";
        let plain = parse(&format!("DESC TABLE {table}"))
            .expect("describe")
            .expect("ok");
        let plain = texts(&execute(&plain, &schema, None, &node()).expect("rows"));
        assert!(!plain.contains("b int"), "{plain}");
        let with = parse(&format!("DESC TABLE {table} WITH INTERNALS"))
            .expect("d")
            .expect("ok");
        let with = texts(&execute(&with, &schema, None, &node()).expect("rows"));
        assert!(with.contains("    b int\n"), "{with}");
        assert!(
            with.contains(&format!("ALTER TABLE {table} DROP b USING TIMESTAMP 3000;")),
            "{with}"
        );
        assert!(
            with.contains(&format!(
                "ALTER TABLE {table} DROP \"!@#$%\" USING TIMESTAMP 4000;"
            )),
            "{with}"
        );
        assert!(
            with.contains(&format!("ALTER TABLE {table} ADD \"!@#$%\" int;")),
            "{with}"
        );
    }

    #[test]
    fn named_functions_are_not_found() {
        let schema = schema_of(QUOTED);
        let describe = parse("DESC FUNCTION \"Quoted_KS\".f")
            .expect("describe")
            .expect("ok");
        assert!(matches!(
            execute(&describe, &schema, None, &node()),
            Err(CqlError::Invalid(_))
        ));
    }
}
