//! Server-side DESCRIBE, as cqlsh 6 sends it: `DESCRIBE KEYSPACES`,
//! `DESCRIBE [FULL] SCHEMA`, `DESCRIBE KEYSPACE ks`, `DESCRIBE TABLES`,
//! `DESCRIBE TABLE t`, `DESCRIBE TYPES`, `DESCRIBE TYPE t`,
//! `DESCRIBE CLUSTER` and `DESCRIBE name`.
//!
//! The answer is rows of (keyspace_name, type, name, create_statement), the
//! shape cqlsh prints from; the CQL text comes from `system::describe`.
use storage::schema::{KeyspaceDef, Schema};

use crate::error::{invalid, CqlError};
use crate::frame::{ColumnSpec, ColumnType, ResultMetadata, Rows, RowsWriter};
use crate::system::{self, NodeInfo};

/// A parsed DESCRIBE statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Describe {
    Keyspaces,
    Schema {
        full: bool,
    },
    Keyspace(Option<String>),
    Tables,
    Table(Option<String>, String),
    Types,
    Type(Option<String>, String),
    Cluster,
    Functions,
    Aggregates,
    /// `DESCRIBE name`: a keyspace, or a table of the current keyspace.
    Name(Option<String>, String),
}

/// Parses `text` if it is a DESCRIBE statement; `None` if it is not one.
pub fn parse(text: &str) -> Option<Result<Describe, CqlError>> {
    let text = text.trim().trim_end_matches(';').trim();
    let mut words = text.split_whitespace();
    let first = words.next()?;
    if !first.eq_ignore_ascii_case("describe") && !first.eq_ignore_ascii_case("desc") {
        return None;
    }
    let rest: Vec<&str> = words
        .take_while(|w| !w.eq_ignore_ascii_case("with"))
        .collect();
    Some(parse_words(&rest))
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

fn parse_words(words: &[&str]) -> Result<Describe, CqlError> {
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let syntax = || {
        CqlError::Syntax(crate::parser::SyntaxError {
            line: 1,
            column: 0,
            message: format!(
                "no viable alternative at input 'DESCRIBE {}'",
                words.join(" ")
            ),
        })
    };
    Ok(match lower.as_slice() {
        ["keyspaces"] => Describe::Keyspaces,
        ["schema"] => Describe::Schema { full: false },
        ["full", "schema"] => Describe::Schema { full: true },
        ["keyspace"] => Describe::Keyspace(None),
        ["keyspace", _] => Describe::Keyspace(Some(name_parts(words[1]).1)),
        ["tables"] | ["columnfamilies"] => Describe::Tables,
        ["table", _] | ["columnfamily", _] => {
            let (ks, name) = name_parts(words[1]);
            Describe::Table(ks, name)
        }
        ["types"] => Describe::Types,
        ["type", _] => {
            let (ks, name) = name_parts(words[1]);
            Describe::Type(ks, name)
        }
        ["cluster"] => Describe::Cluster,
        ["functions"] => Describe::Functions,
        ["aggregates"] => Describe::Aggregates,
        [_] => {
            let (ks, name) = name_parts(words[0]);
            Describe::Name(ks, name)
        }
        _ => return Err(syntax()),
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

fn keyspace_elements(ks: &KeyspaceDef, out: &mut Vec<Element>) {
    out.push(Element {
        keyspace: ks.name.clone(),
        kind: "keyspace",
        name: ks.name.clone(),
        create: system::create_keyspace_cql(ks),
    });
    for udt in ks.types.values() {
        out.push(Element {
            keyspace: ks.name.clone(),
            kind: "type",
            name: udt.name.clone(),
            create: system::describe_type(udt),
        });
    }
    for table in ks.tables.values() {
        out.push(Element {
            keyspace: ks.name.clone(),
            kind: "table",
            name: table.name.clone(),
            create: system::describe_table(table),
        });
    }
}

fn find_keyspace<'s>(schema: &'s Schema, name: &str) -> Result<&'s KeyspaceDef, CqlError> {
    schema
        .keyspace(name)
        .ok_or_else(|| invalid(format!("'{name}' not found in keyspaces")))
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
    if *describe == Describe::Cluster {
        return cluster_rows(node);
    }
    let user = |ks: &&KeyspaceDef| !system::is_system_keyspace(&ks.name);
    let mut elements = Vec::new();
    let mut with_statements = true;
    match describe {
        Describe::Keyspaces => {
            with_statements = false;
            for ks in schema.keyspaces.values() {
                elements.push(Element {
                    keyspace: ks.name.clone(),
                    kind: "keyspace",
                    name: ks.name.clone(),
                    create: String::new(),
                });
            }
        }
        Describe::Schema { full } => {
            for ks in schema.keyspaces.values().filter(|ks| *full || user(ks)) {
                keyspace_elements(ks, &mut elements);
            }
        }
        Describe::Keyspace(name) => {
            let name = current(name, session_keyspace)?;
            keyspace_elements(find_keyspace(schema, name)?, &mut elements);
        }
        Describe::Tables | Describe::Types => {
            with_statements = false;
            let keyspaces: Vec<&KeyspaceDef> = match session_keyspace {
                Some(ks) => vec![find_keyspace(schema, ks)?],
                None => schema.keyspaces.values().collect(),
            };
            for ks in keyspaces {
                if *describe == Describe::Tables {
                    for t in ks.tables.values() {
                        elements.push(Element {
                            keyspace: ks.name.clone(),
                            kind: "table",
                            name: t.name.clone(),
                            create: String::new(),
                        });
                    }
                } else {
                    for t in ks.types.values() {
                        elements.push(Element {
                            keyspace: ks.name.clone(),
                            kind: "type",
                            name: t.name.clone(),
                            create: String::new(),
                        });
                    }
                }
            }
        }
        Describe::Functions | Describe::Aggregates => with_statements = false,
        Describe::Table(ks, name) => {
            let ks = find_keyspace(schema, current(ks, session_keyspace)?)?;
            let table = ks
                .tables
                .get(name)
                .ok_or_else(|| invalid(format!("'{name}' not found in keyspace '{}'", ks.name)))?;
            elements.push(Element {
                keyspace: ks.name.clone(),
                kind: "table",
                name: name.clone(),
                create: system::describe_table(table),
            });
        }
        Describe::Type(ks, name) => {
            let ks = find_keyspace(schema, current(ks, session_keyspace)?)?;
            let udt = ks.types.get(name).ok_or_else(|| {
                invalid(format!(
                    "User defined type '{name}' not found in '{}'",
                    ks.name
                ))
            })?;
            elements.push(Element {
                keyspace: ks.name.clone(),
                kind: "type",
                name: name.clone(),
                create: system::describe_type(udt),
            });
        }
        Describe::Name(ks, name) => {
            if ks.is_none() {
                if let Some(found) = schema.keyspace(name) {
                    keyspace_elements(found, &mut elements);
                    return rows(elements, true);
                }
            }
            let ks = find_keyspace(schema, current(ks, session_keyspace)?)?;
            let table = ks
                .tables
                .get(name)
                .ok_or_else(|| invalid(format!("'{name}' not found in keyspace '{}'", ks.name)))?;
            elements.push(Element {
                keyspace: ks.name.clone(),
                kind: "table",
                name: name.clone(),
                create: system::describe_table(table),
            });
        }
        Describe::Cluster => unreachable!("answered above"),
    }
    rows(elements, with_statements)
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
            columns,
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

    #[test]
    fn parses_the_forms_cqlsh_sends() {
        assert!(parse("SELECT 1").is_none());
        assert_eq!(
            parse("DESCRIBE KEYSPACES").and_then(Result::ok),
            Some(Describe::Keyspaces)
        );
        assert_eq!(
            parse("desc table Ks.\"MyTable\";").and_then(Result::ok),
            Some(Describe::Table(Some("ks".into()), "MyTable".into()))
        );
        assert_eq!(
            parse("DESCRIBE FULL SCHEMA WITH INTERNALS").and_then(Result::ok),
            Some(Describe::Schema { full: true })
        );
        assert_eq!(
            parse("DESCRIBE KEYSPACE ks1").and_then(Result::ok),
            Some(Describe::Keyspace(Some("ks1".into())))
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
        let rows = execute(&Describe::Keyspace(Some("ks".into())), &schema, None, &node)
            .expect("describe");
        assert_eq!(rows.rows_count, 1);
        let text = String::from_utf8_lossy(&rows.rows_content);
        assert!(
            text.contains("CREATE KEYSPACE ks WITH replication"),
            "{text}"
        );
        assert!(execute(
            &Describe::Keyspace(Some("nope".into())),
            &schema,
            None,
            &node
        )
        .is_err());
    }
}
