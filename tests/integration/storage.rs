//! SSTables end to end: flushes and compactions through the REST API, data read back
//! from SSTables alone after a restart, TRUNCATE and DROP removing files, and damaged
//! SSTables (a read error for a bad Data.db chunk, quarantine for a bad small component).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::TryStreamExt;
use scylla::client::session::Session;
use scylla::statement::Statement;

use crate::harness::{create_keyspace, TestNode};
use crate::metrics::{scrape, value};

/// Rows of `t (pk int, ck int, v text)` as the test expects them.
type Rows = BTreeMap<(i32, i32), String>;

async fn create_table(session: &Session, ks: &str, table: &str) {
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.{table} (pk int, ck int, v text, PRIMARY KEY (pk, ck))"),
            (),
        )
        .await
        .expect("create table");
}

/// Writes `pk in pks` × `ck in cks` with values tagged by `round`, recording them in `rows`.
async fn write_rows(
    session: &Session,
    ks: &str,
    table: &str,
    pks: std::ops::Range<i32>,
    cks: std::ops::Range<i32>,
    round: u32,
    rows: &mut Rows,
) {
    let insert = session
        .prepare(format!(
            "INSERT INTO {ks}.{table} (pk, ck, v) VALUES (?, ?, ?)"
        ))
        .await
        .expect("prepare insert");
    let mut pending = Vec::new();
    for pk in pks {
        for ck in cks.clone() {
            let v = format!(
                "r{round}-{pk}-{ck}-{}",
                "y".repeat((pk * 7 + ck) as usize % 50)
            );
            rows.insert((pk, ck), v.clone());
            pending.push(session.execute_unpaged(&insert, (pk, ck, v)));
            if pending.len() == 128 {
                futures::future::try_join_all(pending.drain(..))
                    .await
                    .expect("inserts");
            }
        }
    }
    futures::future::try_join_all(pending)
        .await
        .expect("inserts");
}

async fn run(session: &Session, cql: String) {
    session
        .query_unpaged(cql.clone(), ())
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"));
}

/// Every row of the table, read with a paged scan of small pages.
async fn scan(session: &Session, ks: &str, table: &str) -> Rows {
    let mut statement = Statement::new(format!("SELECT pk, ck, v FROM {ks}.{table}"));
    statement.set_page_size(7);
    let rows: Vec<(i32, i32, String)> = session
        .query_iter(statement, ())
        .await
        .expect("scan")
        .rows_stream::<(i32, i32, String)>()
        .expect("typed rows")
        .try_collect()
        .await
        .expect("all pages");
    let count = rows.len();
    let map: Rows = rows.into_iter().map(|(p, c, v)| ((p, c), v)).collect();
    assert_eq!(map.len(), count, "a scan returned a row twice");
    map
}

/// Rows of partition `pk` with `low <= ck < high`, in clustering order.
async fn slice(session: &Session, ks: &str, pk: i32, low: i32, high: i32) -> Vec<(i32, String)> {
    session
        .query_unpaged(
            format!("SELECT ck, v FROM {ks}.t WHERE pk = ? AND ck >= ? AND ck < ?"),
            (pk, low, high),
        )
        .await
        .expect("slice")
        .into_rows_result()
        .expect("rows")
        .rows::<(i32, String)>()
        .expect("typed rows")
        .map(|row| row.expect("row"))
        .collect()
}

/// Checks point reads of every expected row (and of `absent` rows), a paged scan and a
/// clustering slice of partition 3 against `rows`.
async fn check_rows(session: &Session, ks: &str, rows: &Rows, absent: &[(i32, i32)]) {
    let select = session
        .prepare(format!("SELECT v FROM {ks}.t WHERE pk = ? AND ck = ?"))
        .await
        .expect("prepare select");
    let keys: Vec<(i32, i32)> = rows.keys().chain(absent).copied().collect();
    for chunk in keys.chunks(64) {
        let reads = chunk.iter().map(|&key| {
            let select = &select;
            async move {
                let result = session.execute_unpaged(select, key).await.expect("select");
                let rows = result.into_rows_result().expect("rows");
                (key, rows.maybe_first_row::<(String,)>().expect("typed row"))
            }
        });
        for (key, found) in futures::future::join_all(reads).await {
            assert_eq!(found.map(|r| r.0), rows.get(&key).cloned(), "row {key:?}");
        }
    }
    assert_eq!(&scan(session, ks, "t").await, rows, "full scan");
    let expected: Vec<(i32, String)> = rows
        .range((3, 5)..(3, 15))
        .map(|((_, ck), v)| (*ck, v.clone()))
        .collect();
    assert_eq!(slice(session, ks, 3, 5, 15).await, expected, "slice");
}

/// Files under `dir` (recursively) whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.map_while(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_ending(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The directory of table `table` of keyspace `ks` (`<table>-<uuid>`).
fn table_dir(node: &TestNode, ks: &str, table: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(node.data_dir().join(ks)).ok()?;
    entries.map_while(Result::ok).map(|e| e.path()).find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&format!("{table}-")))
    })
}

/// Data.db files of a table, outside quarantine.
fn data_files(node: &TestNode, ks: &str, table: &str) -> Vec<PathBuf> {
    table_dir(node, ks, table)
        .map(|dir| files_ending(&dir, "-Data.db"))
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("quarantine"))
        .collect()
}

fn flush(node: &TestNode, target: &str) {
    let (status, body) = node.api("POST", target);
    assert_eq!(status, 200, "{target}: {body}");
}

fn sstable_count(node: &TestNode, ks: &str, table: &str) -> usize {
    let (status, body) = node.api(
        "GET",
        &format!("/column_family/live_ss_table_count/{ks}:{table}"),
    );
    assert_eq!(status, 200, "{body}");
    body.trim().parse().expect("a count")
}

/// Flips one bit in the middle of `path`.
fn flip_middle_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read component");
    assert!(!bytes.is_empty(), "{} is empty", path.display());
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(path, bytes).expect("write component");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_a_restart_from_sstables_alone() {
    let mut node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "sst").await;
    create_table(&session, &ks, "t").await;
    let mut rows = Rows::new();
    write_rows(&session, &ks, "t", 0..40, 0..20, 1, &mut rows).await;
    flush(&node, &format!("/storage_service/keyspace_flush/{ks}"));
    assert!(
        !data_files(&node, &ks, "t").is_empty(),
        "flush wrote no SSTable"
    );

    // Memtable writes over flushed data: overwrites, a row and a range deletion, a
    // partition deletion, and a TTL'd overwrite that will expire.
    write_rows(&session, &ks, "t", 0..5, 0..20, 2, &mut rows).await;
    run(
        &session,
        format!("DELETE FROM {ks}.t WHERE pk = 3 AND ck = 7"),
    )
    .await;
    rows.remove(&(3, 7));
    run(
        &session,
        format!("DELETE FROM {ks}.t WHERE pk = 3 AND ck >= 10 AND ck < 12"),
    )
    .await;
    rows.retain(|&(pk, ck), _| !(pk == 3 && (10..12).contains(&ck)));
    run(&session, format!("DELETE FROM {ks}.t WHERE pk = 9")).await;
    rows.retain(|&(pk, _), _| pk != 9);
    run(
        &session,
        format!("INSERT INTO {ks}.t (pk, ck, v) VALUES (11, 1, 'short') USING TTL 2"),
    )
    .await;
    rows.remove(&(11, 1));
    // A flushed deletion shadowing rows that come back in the memtable.
    flush(&node, &format!("/storage_service/keyspace_flush/{ks}?cf=t"));
    run(
        &session,
        format!("INSERT INTO {ks}.t (pk, ck, v) VALUES (9, 100, 'back')"),
    )
    .await;
    rows.insert((9, 100), "back".into());
    let absent = [(3, 7), (3, 10), (9, 0), (11, 1), (40, 0)];

    drop(session);
    assert_eq!(node.stop(), Some(0), "clean exit:\n{}", node.log());
    // SIGTERM flushed the rest: the log holds no more than each shard's current
    // segment and the spare it prepares ahead; the restart below replays nothing.
    let segments = files_ending(&node.commitlog_dir(), ".log");
    assert!(
        segments.len() <= 2 * node.smp,
        "commitlog segments left after a clean stop: {segments:?}"
    );
    assert!(
        data_files(&node, &ks, "t").len() >= 2,
        "SSTables after stop"
    );
    // A clean stop leaves every write in SSTables: without the commitlog at all, the
    // restarted node must serve exactly the same data. (The segments left still hold
    // already-flushed entries, which a restart would replay again; removing them makes
    // sure the reads below come from SSTables alone.)
    for segment in segments {
        std::fs::remove_file(&segment).expect("remove segment");
    }
    node.relaunch();
    assert!(
        node.log()
            .lines()
            .filter(|l| l.contains("commitlog replayed"))
            .all(|l| l.contains("mutations_applied=0")),
        "replayed mutations without a commitlog:\n{}",
        node.log()
    );
    let session = node.session().await;
    // The TTL'd overwrite has expired by now (2 s); it shadows the flushed value.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    check_rows(&session, &ks, &rows, &absent).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn major_compaction_through_the_api_merges_sstables_and_keeps_data() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "compact").await;
    create_table(&session, &ks, "t").await;
    let mut rows = Rows::new();
    // Three flushes per shard stay under size-tiered's threshold (4): no background
    // compaction merges them before the major one.
    for round in 0..3 {
        write_rows(
            &session,
            &ks,
            "t",
            round * 10..round * 10 + 20,
            0..10,
            round as u32,
            &mut rows,
        )
        .await;
        run(
            &session,
            format!(
                "DELETE FROM {ks}.t WHERE pk = {} AND ck = 3",
                round * 10 + 1
            ),
        )
        .await;
        rows.remove(&(round * 10 + 1, 3));
        flush(&node, &format!("/storage_service/keyspace_flush/{ks}?cf=t"));
    }
    let before = sstable_count(&node, &ks, "t");
    assert!(before > node.smp, "{before} SSTables before compaction");
    flush(&node, &format!("/storage_service/keyspace_compaction/{ks}"));
    let after = sstable_count(&node, &ks, "t");
    assert!(
        after <= node.smp && after < before,
        "{before} -> {after} SSTables"
    );
    assert_eq!(data_files(&node, &ks, "t").len(), after);
    check_rows(&session, &ks, &rows, &[(1, 3), (11, 3)]).await;

    for (round, strategy) in [
        (10, "{'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': 1}"),
        (20, "{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', 'compaction_window_size': 1}"),
    ] {
        run(&session, format!("ALTER TABLE {ks}.t WITH compaction = {strategy}")).await;
        for step in 0..3 {
            write_rows(&session, &ks, "t", step * 7..step * 7 + 15, 0..8, round + step as u32, &mut rows).await;
            run(&session, format!("DELETE FROM {ks}.t WHERE pk = {}", step * 7 + 2)).await;
            rows.retain(|&(pk, _), _| pk != step * 7 + 2);
            flush(&node, &format!("/storage_service/keyspace_flush/{ks}"));
        }
        assert_eq!(scan(&session, &ks, "t").await, rows, "after flushes under {strategy}");
        flush(&node, &format!("/storage_service/keyspace_compaction/{ks}?cf=t"));
        check_rows(&session, &ks, &rows, &[(2, 0), (9, 1), (16, 7)]).await;
    }

    // Errors: unknown keyspace or table, unknown path, wrong method.
    let (status, body) = node.api("POST", "/storage_service/keyspace_flush/nosuchks");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("\"message\"") && body.contains("nosuchks"),
        "{body}"
    );
    let (status, body) = node.api(
        "POST",
        &format!("/storage_service/keyspace_compaction/{ks}?cf=t,nosuch"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nosuch"), "{body}");
    assert_eq!(node.api("GET", "/storage_service/nothing_here").0, 404);
    assert_eq!(
        node.api("GET", &format!("/storage_service/keyspace_flush/{ks}"))
            .0,
        405
    );
    assert_eq!(
        node.api(
            "POST",
            &format!("/column_family/live_ss_table_count/{ks}:t")
        )
        .0,
        405
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn truncate_and_drop_remove_sstable_files() {
    let mut node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "trunc").await;
    create_table(&session, &ks, "t").await;
    create_table(&session, &ks, "gone").await;
    let mut rows = Rows::new();
    write_rows(&session, &ks, "t", 0..20, 0..5, 1, &mut rows).await;
    write_rows(&session, &ks, "gone", 0..20, 0..5, 1, &mut Rows::new()).await;
    flush(&node, &format!("/storage_service/keyspace_flush/{ks}"));
    assert!(!data_files(&node, &ks, "t").is_empty());
    let gone_dir = table_dir(&node, &ks, "gone").expect("table directory");
    assert!(!files_ending(&gone_dir, "-Data.db").is_empty());

    run(&session, format!("TRUNCATE {ks}.t")).await;
    assert_eq!(
        data_files(&node, &ks, "t"),
        Vec::<PathBuf>::new(),
        "truncate left SSTables"
    );
    run(&session, format!("DROP TABLE {ks}.gone")).await;
    assert!(
        files_ending(&gone_dir, "-Data.db").is_empty(),
        "drop left SSTables in {}",
        gone_dir.display()
    );
    let mut after = Rows::new();
    write_rows(&session, &ks, "t", 100..103, 0..2, 2, &mut after).await;
    drop(session);

    node.restart();
    let session = node.session().await;
    assert_eq!(
        scan(&session, &ks, "t").await,
        after,
        "truncated rows came back"
    );
    create_table(&session, &ks, "gone").await;
    assert_eq!(
        scan(&session, &ks, "gone").await,
        Rows::new(),
        "dropped rows came back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flipped_bit_in_data_fails_reads_touching_it() {
    let mut node = TestNode::start_with(1, &[]);
    let session = node.session().await;
    let ks = create_keyspace(&session, "rot").await;
    create_table(&session, &ks, "t").await;
    let mut rows = Rows::new();
    write_rows(&session, &ks, "t", 0..200, 0..10, 1, &mut rows).await;
    drop(session);
    assert_eq!(node.stop(), Some(0), "clean exit:\n{}", node.log());
    let data = data_files(&node, &ks, "t");
    assert_eq!(data.len(), 1, "one SSTable: {data:?}");
    flip_middle_byte(&data[0]);
    node.expect_log_problem("sstable read failed");
    node.expect_log_problem("checksum mismatch");
    node.relaunch();

    let session = node.session().await;
    let select = session
        .prepare(format!("SELECT ck, v FROM {ks}.t WHERE pk = ?"))
        .await
        .expect("prepare");
    let (mut good, mut failed) = (0, 0);
    for pk in 0..200 {
        match session.execute_unpaged(&select, (pk,)).await {
            Ok(result) => {
                let found: Vec<(i32, String)> = result
                    .into_rows_result()
                    .expect("rows")
                    .rows::<(i32, String)>()
                    .expect("typed")
                    .map(|r| r.expect("row"))
                    .collect();
                let expected: Vec<(i32, String)> = rows
                    .range((pk, i32::MIN)..=(pk, i32::MAX))
                    .map(|((_, ck), v)| (*ck, v.clone()))
                    .collect();
                assert_eq!(found, expected, "partition {pk} read wrong data");
                good += 1;
            }
            Err(error) => {
                // A replica's failure to read, as drivers know it.
                assert!(
                    format!("{error:?}").contains("ReadFailure"),
                    "partition {pk}: {error:?}"
                );
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "no read touched the damaged chunk");
    assert!(good > 0, "a damaged chunk failed every read");
    assert!(
        session
            .query_unpaged(format!("SELECT * FROM {ks}.t"), ())
            .await
            .is_err(),
        "a scan over the damaged chunk succeeded"
    );
    // The node is still up and counts the failures.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let errors = value(
        &scrape(&node),
        "tessera_storage_total",
        &[("what", "sstable_read_errors")],
    );
    assert!(
        errors >= f64::from(failed),
        "{errors} sstable_read_errors for {failed} failed reads"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flipped_bit_in_a_small_component_quarantines_the_sstable() {
    for component in ["Summary.db", "Filter.db", "Statistics.db"] {
        let mut node = TestNode::start_with(1, &[]);
        let session = node.session().await;
        let ks = create_keyspace(&session, "quar").await;
        create_table(&session, &ks, "t").await;
        let mut first = Rows::new();
        write_rows(&session, &ks, "t", 0..30, 0..3, 1, &mut first).await;
        flush(&node, &format!("/storage_service/keyspace_flush/{ks}"));
        let mut later = Rows::new();
        write_rows(&session, &ks, "t", 100..105, 0..2, 2, &mut later).await;
        drop(session);
        assert_eq!(node.stop(), Some(0), "clean exit:\n{}", node.log());
        let dir = table_dir(&node, &ks, "t").expect("table directory");
        let damaged = files_ending(&dir, &format!("-{component}"));
        assert_eq!(damaged.len(), 2, "two SSTables: {damaged:?}");
        flip_middle_byte(&damaged[0]);
        node.expect_log_problem("moved to quarantine/");
        // Without the commitlog (whose flushed entries a restart would replay again),
        // what the node serves comes from the SSTable left alone.
        for segment in files_ending(&node.commitlog_dir(), ".log") {
            std::fs::remove_file(&segment).expect("remove segment");
        }
        node.relaunch();

        let log = node.log();
        assert!(log.contains("moved to quarantine/"), "{component}: {log}");
        let quarantined = files_ending(&dir.join("quarantine"), &format!("-{component}"));
        assert_eq!(
            quarantined.len(),
            1,
            "{component}: quarantine holds {quarantined:?}"
        );
        assert_eq!(data_files(&node, &ks, "t").len(), 1, "{component}");
        // The node serves the SSTable left: one flush's rows.
        let session = node.session().await;
        let served = scan(&session, &ks, "t").await;
        assert!(
            served == first || served == later,
            "{component}: {served:?}"
        );
    }
}
