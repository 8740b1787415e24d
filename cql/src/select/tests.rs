//! Unit tests of SELECT over a local table.
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
        self.table.apply(&m, None);
    }

    fn apply_row(&mut self, pk: i32, c1: i32, c2: i32, row: Row) {
        let m = Mutation::new(self.def.id, dkey(pk)).with_row(self.ck(c1, c2), row);
        self.table.apply(&m, None);
    }

    fn set_static(&mut self, pk: i32, s: i32) {
        self.ts += 1;
        let row = Row::new().cell(self.col_id("s"), Cell::live(self.ts, int(s)));
        let m = Mutation::new(self.def.id, dkey(pk)).with_static_row(row);
        self.table.apply(&m, None);
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
    assert_eq!(names, ["pk", "c1", "c2", "s", "l", "m", "st", "v"]);
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
fn a_multi_column_in_with_a_wrong_tuple_size_says_so_as_cassandra_does() {
    let f = sample(false);
    let short = f.err("SELECT v FROM t WHERE pk = 1 AND (c1, c2) IN ((1), (2, 1))");
    assert!(
        short.contains("Expected 2 elements in value tuple, but got 1"),
        "{short}"
    );
    let long = f.err("SELECT v FROM t WHERE pk = 1 AND (c1, c2) IN ((1, 2, 3), (2, 1))");
    assert!(
        long.contains(
            "Invalid list literal for in(c1,c2): value (1, 2, 3) is not of type frozen<tuple<int, int>>"
        ),
        "{long}"
    );
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
        .iter()
        .map(|c| c.name.clone())
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
    let ne = f
        .run(
            "SELECT v FROM t WHERE pk = 0 AND v != 1 ALLOW FILTERING",
            &[],
            &PageOptions::default(),
        )
        .expect_err("!= is not a WHERE relation");
    assert!(
        ne.to_string().contains("Unsupported \"!=\" relation"),
        "{ne}"
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
    assert_eq!(
        f.err("SELECT * FROM t WHERE pk = 1 ORDER BY v"),
        "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got v"
    );
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
        .map(|r| i64::from_be_bytes(r[0].clone().expect("token")[..].try_into().expect("bigint")))
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
