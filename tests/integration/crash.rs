//! Durability: acknowledged writes survive `kill -9` (commitlog in batch
//! mode), also while memtables are being flushed and SSTables compacted, and a
//! clean stop (periodic mode, synced on SIGTERM).
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scylla::client::session::Session;

use crate::harness::{unique_keyspace, TestNode};

const WRITERS: i32 = 8;
/// Keys of writer `w` are `w * KEYS_PER_WRITER + i`.
const KEYS_PER_WRITER: i32 = 10_000_000;

async fn create_table(session: &Session) -> String {
    let ks = unique_keyspace("crash");
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (pk int PRIMARY KEY, v text, n bigint)"),
            (),
        )
        .await
        .expect("create table");
    ks
}

/// The value written under `key`: distinct per key, long enough to span
/// commitlog blocks now and then.
fn value_of(key: i32) -> (String, i64) {
    let text = format!("value-{key}-{}", "x".repeat((key % 300) as usize));
    (text, i64::from(key) * 7 - 3)
}

/// A value of 2-3 KB under `key`, so that a small memtable limit flushes often.
fn big_value_of(key: i32) -> (String, i64) {
    let text = format!("big-{key}-{}", "z".repeat(2000 + (key % 1000) as usize));
    (text, i64::from(key) * 11 + 5)
}

/// Inserts consecutive keys until a write fails; records each key whose
/// write was acknowledged. With `lwt`, each insert is conditional (`IF NOT
/// EXISTS`), taking the compare-and-set path.
async fn writer(session: Arc<Session>, ks: String, w: i32, lwt: bool, acked: Arc<Mutex<Vec<i32>>>) {
    write_keys(session, ks, w, lwt, value_of, acked).await;
}

/// [`writer`] for key block `w`, values from `value`.
async fn write_keys(
    session: Arc<Session>,
    ks: String,
    w: i32,
    lwt: bool,
    value: fn(i32) -> (String, i64),
    acked: Arc<Mutex<Vec<i32>>>,
) {
    let condition = if lwt { " IF NOT EXISTS" } else { "" };
    let insert = format!("INSERT INTO {ks}.t (pk, v, n) VALUES (?, ?, ?){condition}");
    let Ok(prepared) = session.prepare(insert).await else {
        return;
    };
    for i in 0.. {
        let key = w * KEYS_PER_WRITER + i;
        let (text, n) = value(key);
        let write = session.execute_unpaged(&prepared, (key, text, n));
        match tokio::time::timeout(Duration::from_secs(5), write).await {
            Ok(Ok(_)) => acked.lock().expect("not poisoned").push(key),
            _ => return,
        }
    }
}

/// Reads `keys` back (a few at a time) and returns what each holds.
async fn read_back(session: &Session, ks: &str, keys: &[i32]) -> BTreeMap<i32, (String, i64)> {
    let select = session
        .prepare(format!("SELECT v, n FROM {ks}.t WHERE pk = ?"))
        .await
        .expect("prepare select");
    let mut found = BTreeMap::new();
    for chunk in keys.chunks(64) {
        let reads = chunk.iter().map(|&key| {
            let select = &select;
            async move {
                let rows = session
                    .execute_unpaged(select, (key,))
                    .await
                    .expect("select")
                    .into_rows_result()
                    .expect("rows");
                let row: Option<(String, i64)> = rows.maybe_first_row().expect("typed row");
                (key, row)
            }
        });
        for (key, row) in futures::future::join_all(reads).await {
            if let Some(row) = row {
                found.insert(key, row);
            }
        }
    }
    found
}

/// A pseudo-random delay in `low..high` ms (the clock's nanoseconds).
fn random_delay(low: u64, high: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    Duration::from_millis(low + nanos % (high - low))
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_kill_9_in_batch_mode() {
    kill_9_during_writes(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_conditional_writes_survive_kill_9_in_batch_mode() {
    kill_9_during_writes(true).await;
}

/// 8 writers insert distinct keys; the server is killed at a random moment
/// and restarted; every acknowledged write must read back exactly.
async fn kill_9_during_writes(lwt: bool) {
    let mut node = TestNode::start_with(2, &["--commitlog-sync", "batch"]);
    let session = Arc::new(node.session().await);
    let ks = create_table(&session).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(session.clone(), ks.clone(), w, lwt, acked.clone())))
        .collect();
    tokio::time::sleep(random_delay(300, 1500)).await;
    node.kill9();
    for task in writers {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("writers stop once the server is gone")
            .expect("writer task");
    }
    drop(session);
    let acked = std::mem::take(&mut *acked.lock().expect("not poisoned"));
    assert!(
        !acked.is_empty(),
        "no write was acknowledged before the kill"
    );

    eprintln!("{} writes acknowledged before kill -9", acked.len());
    node.relaunch();
    assert!(node.log().contains("commitlog replayed"), "{}", node.log());
    let session = node.session().await;
    assert_all_readable(&session, &ks, &acked, value_of, "after kill -9").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_survive_a_clean_restart_in_periodic_mode() {
    let mut node = TestNode::start();
    let session = node.session().await;
    let ks = create_table(&session).await;
    let insert = session
        .prepare(format!("INSERT INTO {ks}.t (pk, v, n) VALUES (?, ?, ?)"))
        .await
        .expect("prepare");
    let keys: Vec<i32> = (0..200).collect();
    for &key in &keys {
        let (text, n) = value_of(key);
        session
            .execute_unpaged(&insert, (key, text, n))
            .await
            .expect("insert");
    }
    session
        .query_unpaged(format!("DELETE FROM {ks}.t WHERE pk = 7"), ())
        .await
        .expect("delete");
    // A truncation is logged too: the rows before it stay gone.
    session
        .query_unpaged(format!("CREATE TABLE {ks}.u (pk int PRIMARY KEY)"), ())
        .await
        .expect("create u");
    for pk in [1, 2] {
        session
            .query_unpaged(format!("INSERT INTO {ks}.u (pk) VALUES ({pk})"), ())
            .await
            .expect("insert u");
    }
    session
        .query_unpaged(format!("TRUNCATE {ks}.u"), ())
        .await
        .expect("truncate");
    session
        .query_unpaged(format!("INSERT INTO {ks}.u (pk) VALUES (3)"), ())
        .await
        .expect("insert u after truncate");
    drop(session);
    // The sync period (10 s) has not passed: the stop path must have
    // written (and synced) everything acknowledged before exiting.
    node.restart();
    let session = node.session().await;
    let found = read_back(&session, &ks, &keys).await;
    for key in keys {
        let expected = (key != 7).then(|| value_of(key));
        assert_eq!(found.get(&key), expected.as_ref(), "key {key}");
    }
    let rows = session
        .query_unpaged(format!("SELECT pk FROM {ks}.u"), ())
        .await
        .expect("select u")
        .into_rows_result()
        .expect("rows");
    let pks: Vec<i32> = rows
        .rows::<(i32,)>()
        .expect("typed rows")
        .map(|row| row.expect("row").0)
        .collect();
    assert_eq!(pks, vec![3], "truncated rows must not come back");
}

#[test]
fn a_shard_that_cannot_open_its_commitlog_stops_the_whole_node() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let commitlog = dir.path().join("commitlog");
    // Shard 1 cannot remove this "unfinished segment" (a directory), so its
    // commitlog fails to open while shard 0's opens.
    std::fs::create_dir_all(commitlog.join("CommitLog-1-1.log.tmp/x")).expect("mkdir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    child.arg("--smp").arg("2");
    for flag in [
        "--native-transport-port",
        "--native-shard-aware-transport-port",
        "--prometheus-port",
        "--api-port",
    ] {
        child.arg(flag).arg(crate::harness::free_port().to_string());
    }
    let mut child = child
        .arg("--data-file-directories")
        .arg(dir.path().join("data"))
        .arg("--commitlog-directory")
        .arg(&commitlog)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tessera");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node hangs instead of exiting when a shard cannot start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "{status}");
}

/// Rounds of kill -9 at most; each round aims at a flush or a compaction in progress.
const MAX_KILL_ROUNDS: i32 = 16;
/// Rounds of kill -9 at least, even once both kinds of interruption were seen.
const MIN_KILL_ROUNDS: i32 = 4;

/// What a round's kill aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aim {
    /// An SSTable being written outside any compaction: a flush.
    Flush,
    /// A compaction log present: a compaction under way.
    Compaction,
}

/// Whether `dir` shows `aim` under way right now (a best effort: it only picks the
/// moment of the kill; the restart's log proves what was interrupted).
fn under_way(dir: &std::path::Path, aim: Aim) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<String> = entries
        .map_while(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let compacting = names.iter().any(|n| n.starts_with("compaction-"));
    match aim {
        Aim::Compaction => compacting,
        Aim::Flush => {
            !compacting
                && names.iter().any(|n| {
                    n.strip_suffix("-Data.db")
                        .is_some_and(|generation| !names.contains(&format!("{generation}-TOC.txt")))
                })
        }
    }
}

/// Waits (up to `limit`) until `aim` is under way in `dir`.
async fn wait_until_under_way(dir: std::path::PathBuf, aim: Aim, limit: Duration) -> bool {
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if under_way(&dir, aim) {
                return true;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        false
    })
    .await
    .expect("poll task")
}

/// The directory of table `t` of keyspace `ks`.
fn table_dir(node: &TestNode, ks: &str) -> std::path::PathBuf {
    std::fs::read_dir(node.data_dir().join(ks))
        .expect("keyspace directory")
        .map_while(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("t-"))
        })
        .expect("table directory")
}

/// Checks that every key in `keys` reads back with its exact value, `value(key)`.
async fn assert_all_readable(
    session: &Session,
    ks: &str,
    keys: &[i32],
    value: fn(i32) -> (String, i64),
    when: &str,
) {
    let found = read_back(session, ks, keys).await;
    let lost: Vec<i32> = keys
        .iter()
        .copied()
        .filter(|k| found.get(k) != Some(&value(*k)))
        .collect();
    assert!(
        lost.is_empty(),
        "{when}: {} of {} acknowledged writes lost or wrong, e.g. {:?}",
        lost.len(),
        keys.len(),
        &lost[..lost.len().min(10)]
    );
}

/// 8 writers insert 2-3 KB rows under a 2 MiB memtable budget (flushes every few
/// hundred writes, compactions every few flushes) with the commitlog in batch mode.
/// Each round kills the server with SIGKILL while a flush or a compaction is under way
/// (found by watching the table directory, then a random few milliseconds more), and
/// restarts it; every write acknowledged in any round must read back exactly. The
/// rounds go on until the restart logs prove that one kill interrupted a flush (an
/// incomplete SSTable removed) and one a compaction (a compaction log recovered).
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_kill_9_during_flushes_and_compactions() {
    let mut node = TestNode::start_with(
        2,
        &[
            "--commitlog-sync",
            "batch",
            "--memtable-total-space-in-mb",
            "2",
        ],
    );
    let ks = create_table(&node.session().await).await;
    let dir = table_dir(&node, &ks);
    let mut acked_all = Vec::new();
    let (mut flushes_interrupted, mut compactions_interrupted) = (0, 0);
    let mut rounds = 0;
    while rounds < MIN_KILL_ROUNDS
        || (rounds < MAX_KILL_ROUNDS && (flushes_interrupted == 0 || compactions_interrupted == 0))
    {
        // Aim at what is still unproven, alternating otherwise.
        let aim = match (flushes_interrupted > 0, compactions_interrupted > 0) {
            (true, false) => Aim::Compaction,
            (false, true) => Aim::Flush,
            _ if rounds % 2 == 1 => Aim::Compaction,
            _ => Aim::Flush,
        };
        let session = Arc::new(node.session().await);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let block = rounds * WRITERS + w;
                let task = write_keys(
                    session.clone(),
                    ks.clone(),
                    block,
                    false,
                    big_value_of,
                    acked.clone(),
                );
                tokio::spawn(task)
            })
            .collect();
        // Let some writes land first, then wait for the moment aimed at.
        tokio::time::sleep(random_delay(100, 400)).await;
        let aimed = wait_until_under_way(dir.clone(), aim, Duration::from_secs(10)).await;
        tokio::time::sleep(random_delay(0, 4)).await;
        node.kill9();
        for task in writers {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("writers stop once the server is gone")
                .expect("writer task");
        }
        drop(session);
        let acked = std::mem::take(&mut *acked.lock().expect("not poisoned"));
        node.relaunch();
        let log = node.log();
        let flush_hit = log.contains("removed an incomplete sstable");
        let compaction_hit = log.contains("compaction recovered");
        flushes_interrupted += i32::from(flush_hit);
        compactions_interrupted += i32::from(compaction_hit);
        eprintln!(
            "round {rounds}: aimed at {aim:?} (seen: {aimed}), {} writes acknowledged, \
             interrupted flush: {flush_hit}, interrupted compaction: {compaction_hit}",
            acked.len()
        );
        let session = node.session().await;
        assert_all_readable(
            &session,
            &ks,
            &acked,
            big_value_of,
            &format!("round {rounds}"),
        )
        .await;
        acked_all.extend(acked);
        rounds += 1;
    }
    let session = node.session().await;
    assert_all_readable(&session, &ks, &acked_all, big_value_of, "after every round").await;
    assert!(
        flushes_interrupted > 0 && compactions_interrupted > 0,
        "in {rounds} rounds, {flushes_interrupted} kills interrupted a flush and \
         {compactions_interrupted} a compaction"
    );
}
