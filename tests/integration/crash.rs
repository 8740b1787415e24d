//! Durability: acknowledged writes survive `kill -9` (commitlog in batch
//! mode) and a clean stop (periodic mode, synced on SIGTERM).
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

/// Inserts consecutive keys until a write fails; records each key whose
/// write was acknowledged. With `lwt`, each insert is conditional (`IF NOT
/// EXISTS`), taking the compare-and-set path.
async fn writer(session: Arc<Session>, ks: String, w: i32, lwt: bool, acked: Arc<Mutex<Vec<i32>>>) {
    let condition = if lwt { " IF NOT EXISTS" } else { "" };
    let insert = format!("INSERT INTO {ks}.t (pk, v, n) VALUES (?, ?, ?){condition}");
    let Ok(prepared) = session.prepare(insert).await else {
        return;
    };
    for i in 0.. {
        let key = w * KEYS_PER_WRITER + i;
        let (text, n) = value_of(key);
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
    let found = read_back(&session, &ks, &acked).await;
    let lost: Vec<i32> = acked
        .iter()
        .copied()
        .filter(|k| found.get(k) != Some(&value_of(*k)))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost or wrong after kill -9, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
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
