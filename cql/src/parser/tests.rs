//! Parser tests: real statements from drivers and cqlsh, keyword identifiers, literals, errors,
//! and a no-panic property test.

use super::ast::*;
use super::*;

fn parse(text: &str) -> ParsedStatement {
    match parse_statement(text) {
        Ok(parsed) => parsed,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn stmt(text: &str) -> Statement {
    parse(text).statement
}

fn select(text: &str) -> SelectStatement {
    match stmt(text) {
        Statement::Select(s) => s,
        other => panic!("not a select: {other:?}"),
    }
}

fn where_of(text: &str) -> Vec<Relation> {
    select(text).where_clause
}

fn int(text: &str) -> Term {
    Term::Constant(Constant {
        kind: ConstantKind::Integer,
        text: text.into(),
    })
}

fn string(text: &str) -> Term {
    Term::Constant(Constant {
        kind: ConstantKind::String,
        text: text.into(),
    })
}

fn marker(index: usize) -> Term {
    Term::Bind(BindMarker { index, name: None })
}

fn qn(keyspace: Option<&str>, name: &str) -> QualifiedName {
    QualifiedName {
        keyspace: keyspace.map(String::from),
        name: name.into(),
    }
}

/// Statements real drivers, cqlsh and schemas send; all must parse.
const ACCEPTED: &[&str] = &[
    "SELECT * FROM system_schema.keyspaces",
    "SELECT * FROM system_schema.tables",
    "SELECT * FROM system_schema.columns",
    "SELECT * FROM system_schema.types",
    "SELECT * FROM system_schema.functions",
    "SELECT * FROM system_schema.aggregates",
    "SELECT * FROM system_schema.views",
    "SELECT * FROM system_schema.indexes",
    "SELECT peer, data_center, host_id, preferred_ip, rack, release_version, rpc_address, schema_version, tokens FROM system.peers",
    "SELECT * FROM system.peers_v2",
    "SELECT key, bootstrapped, broadcast_address, cluster_name, cql_version, data_center, gossip_generation, host_id, listen_address, native_protocol_version, partitioner, rack, release_version, rpc_address, schema_version, thrift_version, tokens, truncated_at FROM system.local WHERE key='local'",
    "SELECT schema_version FROM system.local WHERE key='local'",
    "select cluster_name, release_version from system.local",
    "SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'ks'",
    "SELECT * FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
    "SELECT now() FROM system.local",
    "SELECT keyspace_name, table_name, column_name, kind, position, type, clustering_order FROM system_schema.columns",
    "SELECT keyspace_name, aggregate_name, argument_types, final_func, initcond, return_type, state_func, state_type FROM system_schema.aggregates",
    "SELECT keyspace_name, function_name, argument_names, argument_types, body, called_on_null_input, language, return_type FROM system_schema.functions",
    "select keyspace_name, type_name, field_names, field_types from system_schema.types",
    "SELECT keyspace_name, view_name, base_table_name, where_clause FROM system_schema.views",
    "SELECT keyspace_name, table_name, index_name, kind, options FROM system_schema.indexes",
    "SELECT keyspace_name, replication, durable_writes FROM system_schema.keyspaces WHERE keyspace_name IN ('a', 'b')",
    "SELECT tokens FROM system.local WHERE key='local' USING TIMEOUT 2s",
    "USE ks",
    "use \"MyKs\";",
    "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1} AND durable_writes = true",
    "CREATE KEYSPACE ks WITH REPLICATION = { 'class' : 'NetworkTopologyStrategy', 'dc1' : 3, 'dc2': 2 }",
    "ALTER KEYSPACE ks WITH durable_writes = false",
    "DROP KEYSPACE IF EXISTS ks",
    "CREATE TABLE ks.t (pk int PRIMARY KEY, v text)",
    "CREATE TABLE IF NOT EXISTS t (a int, b int, c text, d timeuuid, s int static, PRIMARY KEY ((a, b), c, d)) WITH CLUSTERING ORDER BY (c DESC, d ASC) AND comment = 'x' AND gc_grace_seconds = 0",
    "CREATE TABLE t (k int, v int, PRIMARY KEY (k)) WITH COMPACT STORAGE",
    "CREATE TABLE t (k int PRIMARY KEY, l list<int>, s set<text>, m map<text, frozen<list<int>>>, tu tuple<int, text>, u frozen<ks.addr>, c 'org.apache.cassandra.db.marshal.BytesType',)",
    "CREATE TABLE t (k int PRIMARY KEY) WITH compaction = {'class': 'LeveledCompactionStrategy'} AND caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'} AND bloom_filter_fp_chance = 0.01",
    "CREATE TABLE t (key text, type text, ttl int, writetime int, count int, timestamp timestamp, value blob, list int, map int, text text, date date, time time, role text, users int, filtering int, keys int, options int, login int, json text, PRIMARY KEY (key, type))",
    "CREATE TABLE t (k counter PRIMARY KEY, a ascii, b bigint, c blob, d boolean, e date, f decimal, g double, h duration, i float, j inet, l smallint, m varchar, n time, o timestamp, p tinyint, q uuid, r varint)",
    "ALTER TABLE t ADD c int",
    "ALTER TABLE t ADD c int static",
    "ALTER TABLE t ADD (c1 int, c2 text)",
    "ALTER TABLE t DROP c",
    "ALTER TABLE t DROP (c1, c2)",
    "ALTER TABLE t RENAME a TO b AND c TO d",
    "ALTER TABLE t ALTER c TYPE blob",
    "ALTER TABLE t WITH comment = 'hi' AND default_time_to_live = 10",
    "DROP TABLE IF EXISTS ks.t",
    "TRUNCATE t",
    "TRUNCATE TABLE ks.t",
    "CREATE TYPE IF NOT EXISTS ks.address (street text, city text, zip int)",
    "ALTER TYPE address ADD country text",
    "ALTER TYPE address RENAME zip TO zipcode",
    "DROP TYPE IF EXISTS address",
    "CREATE INDEX ON t (v)",
    "CREATE INDEX IF NOT EXISTS idx ON ks.t (keys(m))",
    "CREATE INDEX i2 ON t (values(m))",
    "CREATE INDEX i3 ON t (entries(m))",
    "CREATE INDEX i4 ON t (full(fl))",
    "CREATE CUSTOM INDEX ci ON t (v) USING 'org.apache.cassandra.index.sasi.SASIIndex' WITH OPTIONS = {'mode': 'CONTAINS'}",
    "DROP INDEX IF EXISTS ks.idx",
    "CREATE MATERIALIZED VIEW ks.mv AS SELECT * FROM ks.t WHERE v IS NOT NULL AND k IS NOT NULL PRIMARY KEY (v, k) WITH CLUSTERING ORDER BY (k DESC)",
    "DROP MATERIALIZED VIEW IF EXISTS ks.mv",
    "INSERT INTO t (a, b) VALUES (1, 'x')",
    "INSERT INTO t (a, b) VALUES (?, ?) IF NOT EXISTS USING TTL 10 AND TIMESTAMP 123 AND TIMEOUT 5s",
    "INSERT INTO t (a, b) VALUES (:a, :b) USING TTL :ttl",
    "INSERT INTO t JSON '{\"a\": 1}'",
    "INSERT INTO t JSON ? DEFAULT UNSET",
    "INSERT INTO t JSON '{}' DEFAULT NULL",
    "UPDATE t SET v = 1 WHERE k = 0",
    "UPDATE t USING TTL 5 SET v = v + 1, l = [1] + l, s = s - {'a'}, m['k'] = 'v', u.f = 3 WHERE k = 0 IF EXISTS",
    "UPDATE t SET c = c -1 WHERE k = 0",
    "UPDATE t SET c += 2, d -= 3 WHERE k = 0 IF v = 1 AND m['a'] = 'b' AND u.f > 2 AND w IN (1, 2)",
    "UPDATE ks.t SET m = m + {'a': 1} WHERE k IN ? IF v != null",
    "DELETE FROM t WHERE k = 1",
    "DELETE a, m['k'], u.f FROM t USING TIMESTAMP 10 WHERE k = 1 IF EXISTS",
    "DELETE FROM t WHERE k = 1 IF v = 3",
    "BEGIN BATCH APPLY BATCH",
    "BEGIN BATCH INSERT INTO t (a) VALUES (1); UPDATE t SET v = 2 WHERE k = 1; DELETE FROM t WHERE k = 3; APPLY BATCH",
    "BEGIN UNLOGGED BATCH USING TIMESTAMP 5 INSERT INTO t (a) VALUES (?) APPLY BATCH;",
    "BEGIN COUNTER BATCH UPDATE t SET c = c + 1 WHERE k = 1; APPLY BATCH",
    "SELECT JSON * FROM t",
    "SELECT DISTINCT k FROM t",
    "SELECT JSON DISTINCT k, s FROM t",
    "SELECT json, distinct FROM t",
    "SELECT a AS x, writetime(b), ttl(b) AS t, count(*), count(1), token(a, b), toJson(c), max(c), cast(c AS int), u.f, system.now() FROM t",
    "SELECT COUNT(*) AS cnt FROM t",
    "SELECT k FROM t WHERE k = 1 AND c > 2 AND c <= 5 AND d != 3 GROUP BY k, c ORDER BY c DESC, d ASC PER PARTITION LIMIT 2 LIMIT 10 ALLOW FILTERING BYPASS CACHE USING TIMEOUT 500ms",
    "SELECT * FROM t WHERE k IN (1, 2, 3)",
    "SELECT * FROM t WHERE k IN ()",
    "SELECT * FROM t WHERE (c1, c2) > (1, 2) AND (c1, c2) <= ?",
    "SELECT * FROM t WHERE (c1, c2) IN ((1, 2), (3, 4))",
    "SELECT * FROM t WHERE (c1, c2) IN ?",
    "SELECT * FROM t WHERE token(a, b) > token(1, 2) AND token(a, b) <= ?",
    "SELECT * FROM t WHERE l CONTAINS 1 AND m CONTAINS KEY 'a' AND m['a'] = 'b' AND name LIKE 'ab%' ALLOW FILTERING",
    "SELECT * FROM t LIMIT ?",
    "SELECT * FROM t WHERE key = 'x' -- trailing comment",
    "/* leading */ SELECT * // line\nFROM t",
    "SELECT * FROM t WHERE d = 1h30m AND e = P1Y2M AND f = PT3H AND g = P2W AND h = -2d",
    "SELECT * FROM t WHERE a = 1.5e10 AND b = NaN AND c = Infinity AND d = -Infinity AND e = -1",
    "SELECT * FROM t WHERE a = 0xCAFE AND b = 123e4567-e89b-12d3-a456-426614174000 AND c = true AND d = FALSE",
    "SELECT * FROM t WHERE a = $$x'y$$ AND b = 'it''s'",
    "INSERT INTO t (k, u) VALUES (1, {street: 'x', \"City\": 'y'})",
    "INSERT INTO t (k, m, s, e) VALUES (1, {'a': 1}, {1, 2}, {})",
    "INSERT INTO t (k, tu) VALUES (1, (1, 'a'))",
    "INSERT INTO t (k, v) VALUES ((int) ?, (text) 'x')",
    "INSERT INTO t (k, v, w, x) VALUES (now(), uuid(), toTimestamp(now()), currentTimestamp())",
    "SELECT * FROM t WHERE t > minTimeuuid('2013-01-01 00:05+0000') AND b = blobAsText(0x00)",
    "CREATE ROLE alice WITH PASSWORD = 'x' AND LOGIN = true",
    "CREATE USER bob WITH PASSWORD 'x' SUPERUSER",
    "GRANT SELECT ON ALL KEYSPACES TO alice",
    "LIST ROLES",
    "DROP ROLE alice",
];

#[test]
fn accepts_real_statements() {
    for text in ACCEPTED {
        if let Err(e) = parse_statement(text) {
            panic!("failed to parse {text:?}: {e}");
        }
    }
}

#[test]
fn select_peers_shape() {
    let s = select("SELECT peer, tokens FROM system.peers");
    assert_eq!(s.table, qn(Some("system"), "peers"));
    assert_eq!(
        s.selection,
        Selection::Selectors(vec![
            Selector {
                selectable: Selectable::Column("peer".into()),
                alias: None
            },
            Selector {
                selectable: Selectable::Column("tokens".into()),
                alias: None
            },
        ])
    );
}

#[test]
fn identifiers_fold_case_unless_quoted() {
    let s = select("SELECT MyCol, \"MyCol\", \"a\"\"b\" FROM KS.Tab");
    assert_eq!(s.table, qn(Some("ks"), "tab"));
    let Selection::Selectors(sel) = s.selection else {
        panic!("expected selectors")
    };
    let names: Vec<String> = sel.iter().map(|s| s.selectable.to_string()).collect();
    assert_eq!(names, vec!["mycol", "\"MyCol\"", "\"a\"\"b\""]);
}

#[test]
fn bind_markers_numbered_in_order() {
    let p = parse("UPDATE t USING TTL ? SET a = :x, b = ? WHERE k IN ? AND c = :y");
    assert_eq!(p.bind_count, 5);
    assert_eq!(
        p.bind_names,
        vec![None, Some("x".into()), None, None, Some("y".into())]
    );
    let Statement::Update(u) = p.statement else {
        panic!("update")
    };
    assert_eq!(u.using.ttl, Some(marker(0)));
    assert_eq!(
        u.where_clause[0],
        Relation::In {
            column: "k".into(),
            values: InValues::Marker(BindMarker {
                index: 3,
                name: None
            })
        }
    );
    let batch =
        parse("BEGIN BATCH INSERT INTO t (a) VALUES (?); INSERT INTO t (a) VALUES (?) APPLY BATCH");
    assert_eq!(batch.bind_count, 2);
}

#[test]
fn assignments() {
    let Statement::Update(u) = stmt(
        "UPDATE t SET a = 1, b = b + 2, c = [0] + c, d = d - {'x'}, e[1] = 'y', f.g = 3, h += 4, i -= 5 WHERE k = 0",
    ) else {
        panic!("update")
    };
    let expected = vec![
        Assignment::Set {
            column: "a".into(),
            value: int("1"),
        },
        Assignment::Add {
            column: "b".into(),
            value: int("2"),
        },
        Assignment::Prepend {
            column: "c".into(),
            value: Term::List(vec![int("0")]),
        },
        Assignment::Subtract {
            column: "d".into(),
            value: Term::Set(vec![string("x")]),
        },
        Assignment::SetElement {
            column: "e".into(),
            key: int("1"),
            value: string("y"),
        },
        Assignment::SetField {
            column: "f".into(),
            field: "g".into(),
            value: int("3"),
        },
        Assignment::Add {
            column: "h".into(),
            value: int("4"),
        },
        Assignment::Subtract {
            column: "i".into(),
            value: int("5"),
        },
    ];
    assert_eq!(u.assignments, expected);
    assert!(parse_statement("UPDATE t SET a = b + 1 WHERE k = 0").is_err());
}

#[test]
fn counter_decrement_without_space() {
    let Statement::Update(u) = stmt("UPDATE t SET c = c -1 WHERE k = 0") else {
        panic!("update")
    };
    assert_eq!(
        u.assignments,
        vec![Assignment::Subtract {
            column: "c".into(),
            value: int("1")
        }]
    );
}

#[test]
fn literal_kinds_and_text() {
    let rels = where_of(
        "SELECT * FROM t WHERE a = -12 AND b = 1.5E3 AND c = -Infinity AND d = 0xFF AND e = 1h30m AND f = TRUE AND g = null",
    );
    let values: Vec<Term> = rels
        .into_iter()
        .map(|r| match r {
            Relation::Simple { value, .. } => value,
            other => panic!("{other:?}"),
        })
        .collect();
    let c = |kind, text: &str| {
        Term::Constant(Constant {
            kind,
            text: text.into(),
        })
    };
    assert_eq!(
        values,
        vec![
            c(ConstantKind::Integer, "-12"),
            c(ConstantKind::Float, "1.5E3"),
            c(ConstantKind::Float, "-Infinity"),
            c(ConstantKind::Hex, "0xFF"),
            c(ConstantKind::Duration, "1h30m"),
            c(ConstantKind::Boolean, "true"),
            Term::Null,
        ]
    );
}

#[test]
fn collection_literals() {
    let Statement::Insert(i) =
        stmt("INSERT INTO t (a, b, c, d, e, f) VALUES ({}, {1: 'a'}, {1, 2}, {x: 1, y: [2]}, (1, ?), (int) ?)")
    else {
        panic!("insert")
    };
    let InsertValues::Columns { values, .. } = i.values else {
        panic!("columns")
    };
    assert_eq!(values[0], Term::EmptyBraces);
    assert_eq!(values[1], Term::Map(vec![(int("1"), string("a"))]));
    assert_eq!(values[2], Term::Set(vec![int("1"), int("2")]));
    assert_eq!(
        values[3],
        Term::Udt(vec![
            ("x".into(), int("1")),
            ("y".into(), Term::List(vec![int("2")]))
        ])
    );
    assert_eq!(values[4], Term::Tuple(vec![int("1"), marker(0)]));
    assert_eq!(
        values[5],
        Term::TypeHint {
            ty: CqlType::Native(NativeType::Int),
            term: Box::new(marker(1))
        }
    );
}

#[test]
fn relations() {
    let rels = where_of(
        "SELECT * FROM t WHERE token(a, b) > ? AND (c, d) IN ((1, 2)) AND m[1] = 2 AND l CONTAINS KEY 3 AND v IS NOT NULL",
    );
    assert_eq!(
        rels[0],
        Relation::Token {
            columns: vec!["a".into(), "b".into()],
            op: Operator::Gt,
            value: marker(0)
        }
    );
    assert_eq!(
        rels[1],
        Relation::MultiColumnIn {
            columns: vec!["c".into(), "d".into()],
            values: InValues::List(vec![Term::Tuple(vec![int("1"), int("2")])])
        }
    );
    assert_eq!(
        rels[2],
        Relation::Element {
            column: "m".into(),
            key: int("1"),
            op: Operator::Eq,
            value: int("2")
        }
    );
    assert_eq!(
        rels[3],
        Relation::Simple {
            column: "l".into(),
            op: Operator::ContainsKey,
            value: int("3")
        }
    );
    assert_eq!(rels[4], Relation::IsNotNull { column: "v".into() });
}

#[test]
fn select_clauses() {
    let s = select("SELECT JSON DISTINCT k FROM t WHERE k = 1 GROUP BY k ORDER BY c DESC PER PARTITION LIMIT 1 LIMIT ? ALLOW FILTERING BYPASS CACHE USING TIMEOUT 500ms");
    assert!(s.json && s.distinct && s.allow_filtering && s.bypass_cache);
    assert_eq!(s.group_by, vec!["k".to_string()]);
    assert_eq!(s.order_by, vec![("c".to_string(), Order::Desc)]);
    assert_eq!(s.per_partition_limit, Some(int("1")));
    assert_eq!(s.limit, Some(marker(0)));
    assert_eq!(
        s.timeout,
        Some(Term::Constant(Constant {
            kind: ConstantKind::Duration,
            text: "500ms".into()
        }))
    );
    let s = select("SELECT json FROM t");
    assert!(!s.json);
}

#[test]
fn special_selectors() {
    let s = select("SELECT count(*), COUNT(1), count(v), writetime(v), ttl(v), cast(v AS text) AS c, u.f.g FROM t");
    let Selection::Selectors(sel) = s.selection else {
        panic!("selectors")
    };
    let rendered: Vec<String> = sel.iter().map(|s| s.selectable.to_string()).collect();
    assert_eq!(
        rendered,
        vec![
            "count(*)",
            "count(*)",
            "count(v)",
            "writetime(v)",
            "ttl(v)",
            "cast(v AS text)",
            "u.f.g"
        ]
    );
    assert_eq!(sel[5].alias.as_deref(), Some("c"));
}

#[test]
fn create_table_shape() {
    let Statement::CreateTable(t) = stmt(
        "CREATE TABLE ks.t (a int, b int, c text, s int static, m map<text, frozen<list<int>>>, PRIMARY KEY ((a, b), c)) WITH CLUSTERING ORDER BY (c DESC) AND COMPACT STORAGE AND comment = 'x'",
    ) else {
        panic!("create table")
    };
    assert_eq!(t.name, qn(Some("ks"), "t"));
    assert!(t.columns[3].is_static);
    assert_eq!(t.columns[4].ty.to_string(), "map<text, frozen<list<int>>>");
    let key = t.key().expect("key");
    assert_eq!(key.partition_key, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(key.clustering_columns, vec!["c".to_string()]);
    assert_eq!(
        t.options.clustering_order,
        vec![("c".to_string(), Order::Desc)]
    );
    assert!(t.options.compact_storage);
    assert_eq!(
        t.options.properties,
        vec![(
            "comment".to_string(),
            PropertyValue::Constant(Constant {
                kind: ConstantKind::String,
                text: "x".into()
            })
        )]
    );
    let Statement::CreateTable(t) = stmt("CREATE TABLE t (k int PRIMARY KEY, v text)") else {
        panic!("create table")
    };
    assert_eq!(t.key().expect("key").partition_key, vec!["k".to_string()]);
}

#[test]
fn keyspace_properties() {
    let Statement::CreateKeyspace(k) = stmt(
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3} AND durable_writes = false",
    ) else {
        panic!("keyspace")
    };
    assert_eq!(k.name, "ks");
    let PropertyValue::Map(entries) = &k.properties[0].1 else {
        panic!("map")
    };
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].1.text, "3");
    assert_eq!(
        k.properties[1].1,
        PropertyValue::Constant(Constant {
            kind: ConstantKind::Boolean,
            text: "false".into()
        })
    );
}

#[test]
fn index_targets() {
    let Statement::CreateIndex(i) = stmt(
        "CREATE CUSTOM INDEX IF NOT EXISTS i ON t (keys(m)) USING 'cls' WITH OPTIONS = {'a': 'b'}",
    ) else {
        panic!("index")
    };
    assert!(i.custom && i.if_not_exists);
    assert_eq!(i.name.as_deref(), Some("i"));
    assert_eq!(
        i.targets,
        vec![IndexTarget {
            column: "m".into(),
            kind: IndexTargetKind::Keys
        }]
    );
    assert_eq!(i.using.as_deref(), Some("cls"));
    assert_eq!(i.properties[0].0, "options");
}

#[test]
fn batch_shape() {
    let Statement::Batch(b) = stmt(
        "BEGIN UNLOGGED BATCH USING TIMESTAMP 1 INSERT INTO t (a) VALUES (1) IF NOT EXISTS; DELETE FROM t WHERE k = 1 IF EXISTS; APPLY BATCH",
    ) else {
        panic!("batch")
    };
    assert_eq!(b.kind, BatchKind::Unlogged);
    assert_eq!(b.using.timestamp, Some(int("1")));
    assert_eq!(b.statements.len(), 2);
    let BatchChild::Delete(d) = &b.statements[1] else {
        panic!("delete")
    };
    assert_eq!(d.if_clause, Some(IfClause::Exists));
}

#[test]
fn if_exists_versus_column_named_exists() {
    let Statement::Update(u) = stmt("UPDATE t SET a = 1 WHERE k = 0 IF exists = 1") else {
        panic!("update")
    };
    assert!(matches!(u.if_clause, Some(IfClause::Conditions(_))));
}

#[test]
fn scripts() {
    let all = parse_statements(
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};\n\
         USE ks;;\n\
         CREATE TABLE t (k int PRIMARY KEY, v text); -- comment\n\
         INSERT INTO t (k, v) VALUES (?, ?);\n\
         SELECT * FROM t WHERE k = ?",
    )
    .expect("script parses");
    assert_eq!(all.len(), 5);
    assert_eq!(all[3].bind_count, 2);
    assert_eq!(all[4].bind_count, 1);
    assert!(parse_statements("").expect("empty").is_empty());
    assert!(parse_statements("USE a USE b").is_err());
}

#[test]
fn error_positions_and_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "SELECT FORM t",
            "line 1:12 mismatched input 't' expecting FROM",
        ),
        (
            "SELECT * FORM t",
            "line 1:9 mismatched input 'FORM' expecting FROM",
        ),
        (
            "SELEC * FROM t",
            "line 1:0 no viable alternative at input 'SELEC'",
        ),
        (
            "SELECT * FROM t WHERE",
            "line 1:21 mismatched input '<EOF>' expecting identifier",
        ),
        (
            "SELECT * FROM t\nWHERE k == 1",
            "line 2:9 no viable alternative at input '='",
        ),
        (
            "INSERT INTO t (a) VALUES (1",
            "line 1:27 mismatched input '<EOF>' expecting ')'",
        ),
        (
            "SELECT * FROM t WHERE k = 'abc",
            "line 1:26 unterminated string literal",
        ),
        (
            "SELECT * FROM t x",
            "line 1:16 mismatched input 'x' expecting <EOF>",
        ),
        (
            "CREATE TABLE select (k int PRIMARY KEY)",
            "line 1:13 mismatched input 'select' expecting identifier",
        ),
        (
            "CREATE TABLE t (k int PRIMARY KEY) WITH compression = {'chunk_length_in_kb': null}",
            "line 1:77 Invalid null value for property 'chunk_length_in_kb'",
        ),
    ];
    for (text, expected) in cases {
        let err = parse_statement(text).expect_err(text);
        assert_eq!(err.to_string(), *expected, "for {text:?}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "[".repeat(100_000);
    let err = parse_statement(&format!("SELECT * FROM t WHERE k = {deep}")).expect_err("too deep");
    assert!(err.message.contains("nested too deeply"), "{err}");
    let deep_type = "list<".repeat(100_000);
    assert!(parse_statement(&format!("ALTER TABLE t ADD c {deep_type}")).is_err());
    let deep_fn = "f(".repeat(100_000);
    assert!(parse_statement(&format!("SELECT {deep_fn} FROM t")).is_err());
    let nested_ok = format!(
        "SELECT * FROM t WHERE k = {}1{}",
        "[".repeat(30),
        "]".repeat(30)
    );
    assert!(parse_statement(&nested_ok).is_ok());
}

#[test]
fn reserved_words_rejected_as_columns() {
    for word in ["select", "from", "where", "token", "primary", "null", "in"] {
        let text = format!("ALTER TABLE t ADD {word} int");
        assert!(parse_statement(&text).is_err(), "{text}");
    }
    for word in [
        "key",
        "ttl",
        "type",
        "text",
        "count",
        "timestamp",
        "static",
        "exists",
        "json",
        "distinct",
        "as",
        "options",
        "cache",
        "timeout",
        "default",
        "unset_x",
    ] {
        let text = format!("ALTER TABLE t ADD {word} int");
        assert!(parse_statement(&text).is_ok(), "{text}");
        let text = format!("SELECT {word} FROM t WHERE {word} = 1");
        assert!(parse_statement(&text).is_ok(), "{text}");
    }
}

#[test]
fn display_round_trips_terms_and_types() {
    for text in [
        "[1, 'a''b', {1: 2}, {3, 4}, (5, ?), now(), (int) :x, -1.5, 0xff, null, {f: 1}, {}]",
        "ks.f(token(1), 1h30m, 123e4567-e89b-12d3-a456-426614174000, true)",
    ] {
        let s = select(&format!("SELECT * FROM t WHERE k = {text}"));
        let Relation::Simple { value, .. } = &s.where_clause[0] else {
            panic!("simple")
        };
        assert_eq!(value.to_string(), text);
    }
    let ty = "frozen<map<text, tuple<int, list<ks.\"My\">>>>";
    let Statement::AlterTable(a) = stmt(&format!("ALTER TABLE t ADD c {ty}")) else {
        panic!("alter")
    };
    let AlterTableOperation::Add(cols) = a.operation else {
        panic!("add")
    };
    assert_eq!(cols[0].ty.to_string(), ty);
}

#[test]
fn display_round_trips_statements() {
    for text in ACCEPTED {
        let first = stmt(text);
        let rendered = first.to_string();
        let second = match parse_statement(&rendered) {
            Ok(p) => p.statement,
            Err(e) => panic!("{text:?} rendered as {rendered:?} does not parse: {e}"),
        };
        assert_eq!(first, second, "{text:?} rendered as {rendered:?}");
    }
}

#[test]
fn quoted_names_that_look_like_literals_round_trip() {
    let s = select("SELECT \"p1d\", \"Key\", \"select\" FROM \"1ks\".t");
    let again = select(&Statement::Select(s.clone()).to_string());
    assert_eq!(s, again);
}

mod fuzz {
    use super::super::*;
    use proptest::prelude::*;

    const FRAGMENTS: &[&str] = &[
        "SELECT",
        "*",
        "FROM",
        "t",
        "WHERE",
        "k",
        "=",
        "?",
        ":n",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ";",
        ".",
        "AND",
        "IN",
        "token",
        "INSERT",
        "INTO",
        "VALUES",
        "UPDATE",
        "SET",
        "+",
        "-",
        "DELETE",
        "BEGIN",
        "BATCH",
        "APPLY",
        "IF",
        "EXISTS",
        "NOT",
        "CREATE",
        "TABLE",
        "PRIMARY",
        "KEY",
        "int",
        "list",
        "<",
        ">",
        "frozen",
        "map",
        "1",
        "-1",
        "1.5",
        "'s'",
        "0xff",
        "1h",
        "P1Y",
        "true",
        "null",
        "USING",
        "TTL",
        "TIMEOUT",
        "LIMIT",
        "count",
        "AS",
        "CONTAINS",
        "WITH",
        ":",
        "\"Q\"",
        "CAST",
        "writetime",
        "ALTER",
        "DROP",
        "TYPE",
        "+=",
        "IS",
        "JSON",
        "DISTINCT",
        "ORDER",
        "BY",
        "DESC",
        "INDEX",
        "ON",
        "keys",
        "$$x$$",
    ];

    proptest! {
        #[test]
        fn random_text_never_panics(text in "\\PC{0,80}") {
            let _ = parse_statement(&text);
            let _ = parse_statements(&text);
        }

        #[test]
        fn random_token_sequences_never_panic(
            picks in proptest::collection::vec(0..FRAGMENTS.len(), 0..40)
        ) {
            let text: Vec<&str> = picks.iter().map(|i| FRAGMENTS[*i]).collect();
            let text = text.join(" ");
            if let Ok(parsed) = parse_statement(&text) {
                let rendered = parsed.statement.to_string();
                let again = parse_statement(&rendered);
                prop_assert_eq!(again.map(|p| p.statement), Ok(parsed.statement), "{}", rendered);
            }
            let _ = parse_statements(&text);
        }

        /// Drops or duplicates one token of a known statement; whatever still parses must
        /// render back to an equal AST.
        #[test]
        fn mutated_statements_round_trip(which in 0usize..1000, at in 0usize..100, dup: bool) {
            let base = super::ACCEPTED[which % super::ACCEPTED.len()];
            let tokens = lexer::tokenize(base).expect("accepted statements lex");
            let mut words: Vec<String> = tokens.iter().map(|t| t.text.clone()).collect();
            words.pop();
            let at = at % words.len().max(1);
            if dup {
                let word = words[at].clone();
                words.insert(at, word);
            } else if !words.is_empty() {
                words.remove(at);
            }
            let text = words.join(" ");
            if let Ok(parsed) = parse_statement(&text) {
                let rendered = parsed.statement.to_string();
                let again = parse_statement(&rendered);
                prop_assert_eq!(again.map(|p| p.statement), Ok(parsed.statement), "{}", rendered);
            }
        }

        #[test]
        fn statement_prefixes_never_panic(cut in 0usize..400, which in 0usize..20) {
            let base = super::ACCEPTED[which * 5 % super::ACCEPTED.len()];
            let end = cut.min(base.len());
            if base.is_char_boundary(end) {
                let _ = parse_statement(&base[..end]);
            }
        }
    }
}

#[test]
fn create_table_allows_empty_column_entries() {
    let Statement::CreateTable(t) = stmt("CREATE TABLE t (a int, , b int, , PRIMARY KEY ((a)),)")
    else {
        panic!("create table")
    };
    assert_eq!(t.columns.len(), 2);
    assert_eq!(t.key().expect("key").partition_key, vec!["a".to_string()]);
}
