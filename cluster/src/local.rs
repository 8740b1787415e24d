//! The state one shard owns: its [`Database`], its [`Commitlog`] and its
//! copy of the schema.
//!
//! Writes are durable through the commitlog: [`log_mutations`] appends a
//! mutation's binary form before the caller applies it to the memtable, and
//! [`open_commitlog`] rebuilds the memtables at start by replaying the log.
//! There is no flush to SSTables yet, so no segment is ever discarded and
//! replay reads every write the shard ever took.
//!
//! It lives in a thread local because a shard is a thread: jobs sent by
//! other shards with `scheduler::smp::submit_to` find it here. Nothing in it
//! is shared with another shard; the schema snapshot is an immutable `Arc`
//! that every shard holds its own reference to.
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use futures_util::future::join_all;
use storage::commitlog::{self, Commitlog, CommitlogError, ReplayPosition, ReplayStats};
use storage::database::Database;
use storage::model::{LogEntry, Mutation, TableId};
use storage::schema::Schema;

/// One shard's replica state.
pub struct LocalShard {
    db: RefCell<Database>,
    schema: RefCell<Arc<Schema>>,
    stats: Cell<ProxyStats>,
    /// `None` until [`open_commitlog`] (and in tests that need no
    /// durability): writes are then memtable-only.
    commitlog: RefCell<Option<Rc<Commitlog>>>,
}

/// What replaying the commitlog at start did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// What the commitlog found on disk.
    pub log: ReplayStats,
    /// Mutations applied to the memtables.
    pub mutations_applied: u64,
    /// Mutations of tables no longer in the schema (dropped), skipped.
    pub unknown_table_skipped: u64,
    /// Table truncations replayed.
    pub truncations: u64,
    /// Entries that did not decode (logged), skipped.
    pub undecodable: u64,
}

/// What this shard's coordinator did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests whose data this shard owns, run with no message.
    pub local_requests: u64,
    /// Requests sent to the shard that owns their data.
    pub forwarded_requests: u64,
}

thread_local! {
    static LOCAL: RefCell<Option<Rc<LocalShard>>> = const { RefCell::new(None) };
}

/// Installs this shard's state; called once when the shard starts.
pub fn init(schema: Arc<Schema>) {
    let mut db = Database::new();
    for table in schema.tables() {
        // A fresh database has no tables, so this cannot collide.
        let _ = db.create_table(table.id);
    }
    LOCAL.with(|local| {
        *local.borrow_mut() = Some(Rc::new(LocalShard {
            db: RefCell::new(db),
            schema: RefCell::new(schema),
            stats: Cell::new(ProxyStats::default()),
            commitlog: RefCell::new(None),
        }))
    });
}

fn local() -> Rc<LocalShard> {
    LOCAL
        .with(|local| local.borrow().clone())
        .expect("cluster::local::init runs at shard start")
}

/// Runs `f` with this shard's database. The borrow ends before `f` returns,
/// so it can never be held across an await.
pub fn with_db<R>(f: impl FnOnce(&mut Database) -> R) -> R {
    let shard = local();
    let mut db = shard.db.borrow_mut();
    f(&mut db)
}

/// Counts a single-partition request by where its data lives.
pub fn count_request(owner_is_local: bool) {
    let shard = local();
    let mut stats = shard.stats.get();
    if owner_is_local {
        stats.local_requests += 1;
    } else {
        stats.forwarded_requests += 1;
    }
    shard.stats.set(stats);
}

/// This shard's coordinator counters.
pub fn proxy_stats() -> ProxyStats {
    local().stats.get()
}

/// This shard's current schema snapshot.
pub fn schema() -> Arc<Schema> {
    local().schema.borrow().clone()
}

/// Replaces this shard's schema snapshot and creates or drops the tables
/// that appeared or disappeared.
pub fn set_schema(new: Arc<Schema>) {
    let shard = local();
    let old = shard.schema.replace(new.clone());
    let mut db = shard.db.borrow_mut();
    for table in new.tables() {
        if old.table_by_id(table.id).is_none() {
            let _ = db.create_table(table.id);
        }
    }
    for table in old.tables() {
        if new.table_by_id(table.id).is_none() {
            let _ = db.drop_table(table.id);
        }
    }
}

/// Opens this shard's commitlog (segments named for `shard` in `dir`),
/// replays it into the memtables, and makes every later [`log_mutations`]
/// append to it. Runs once at start, before the shard serves requests.
pub async fn open_commitlog(
    dir: &Path,
    shard: u32,
    config: commitlog::Config,
) -> Result<ReplaySummary, CommitlogError> {
    let mut summary = ReplaySummary::default();
    let mut apply = |position: ReplayPosition, payload: &[u8]| {
        replay_entry(&mut summary, position, payload);
    };
    let (log, stats) = Commitlog::open_with(dir, shard, config, &mut apply).await?;
    summary.log = stats;
    *local().commitlog.borrow_mut() = Some(Rc::new(log));
    Ok(summary)
}

fn replay_entry(summary: &mut ReplaySummary, position: ReplayPosition, payload: &[u8]) {
    let mutation = match LogEntry::decode(payload) {
        Ok(LogEntry::Mutation(mutation)) => *mutation,
        Ok(LogEntry::Truncate { table }) => {
            // Everything logged before it is gone; a table dropped since
            // has nothing to truncate.
            let _ = with_db(|db| db.truncate(table));
            summary.truncations += 1;
            return;
        }
        Err(error) => {
            summary.undecodable += 1;
            tracing::error!(
                segment = position.segment_id,
                offset = position.offset,
                %error,
                "commitlog entry does not decode; skipped"
            );
            return;
        }
    };
    // The schema was loaded before replay: a table missing from it was
    // dropped after the write, and its data must not come back.
    if schema().table_by_id(mutation.table).is_none() {
        summary.unknown_table_skipped += 1;
        return;
    }
    match with_db(|db| db.apply(&mutation)) {
        Ok(()) => summary.mutations_applied += 1,
        Err(_) => summary.unknown_table_skipped += 1,
    }
}

/// Appends `mutations` to this shard's commitlog and waits as its sync mode
/// says: in batch mode until they are durable, in periodic mode not at all.
/// The appends are issued together so that they share one group commit.
/// Without a commitlog (not opened) this does nothing.
pub async fn log_mutations(mutations: &[Mutation]) -> Result<(), CommitlogError> {
    let Some(log) = local().commitlog.borrow().clone() else {
        return Ok(());
    };
    let payloads: Vec<Vec<u8>> = mutations.iter().map(Mutation::encode).collect();
    let appends = payloads.iter().map(|payload| log.append(payload));
    join_all(appends)
        .await
        .into_iter()
        .try_for_each(|r| r.map(drop))
}

/// Truncates `table` in this shard's memtables and logs the truncation, so
/// that replay truncates it at the same point of the log.
///
/// The memtables are truncated first, then the entry is appended with no
/// await in between (an append takes its place in the log when first
/// polled): a write applied before the truncation was logged before it. A
/// write concurrent with the truncation (logged before it, applied after)
/// may be kept now and truncated after a restart; TRUNCATE gives writes
/// racing with it no promise either way.
pub async fn truncate_logged(table: TableId) -> Result<(), TruncateError> {
    with_db(|db| db.truncate(table)).map_err(TruncateError::Storage)?;
    let Some(log) = local().commitlog.borrow().clone() else {
        return Ok(());
    };
    let entry = LogEntry::Truncate { table }.encode();
    log.append(&entry).await.map_err(TruncateError::Commitlog)?;
    Ok(())
}

/// Why [`truncate_logged`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TruncateError {
    #[error(transparent)]
    Storage(storage::error::StorageError),
    #[error(transparent)]
    Commitlog(CommitlogError),
}

/// This shard's commitlog counters, if it has one.
pub fn commitlog_stats() -> Option<commitlog::CommitlogStats> {
    local().commitlog.borrow().as_ref().map(|log| log.stats())
}

/// Syncs and closes this shard's commitlog (the stop path). Writes arriving
/// afterwards are memtable-only and lost at exit, so call it once requests
/// have stopped.
pub async fn close_commitlog() -> Result<(), CommitlogError> {
    let Some(log) = local().commitlog.borrow_mut().take() else {
        return Ok(());
    };
    match Rc::try_unwrap(log) {
        Ok(log) => log.close().await,
        // A request still holds it: make what it appended durable; the
        // writer stops when the last handle is dropped.
        Err(shared) => shared.sync().await,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use scheduler::{run_shards, ShardSetConfig};
    use storage::commitlog::SyncMode;
    use storage::model::{Cell, DecoratedKey, Row, TableId};
    use storage::schema::{KeyspaceDef, TableDef, TableOptions};

    use super::*;

    fn schema_with(tables: &[TableId]) -> Arc<Schema> {
        let mut keyspace = KeyspaceDef::new("ks", BTreeMap::new(), true);
        for (i, id) in tables.iter().enumerate() {
            let name = format!("t{i}");
            let table = TableDef {
                keyspace: "ks".into(),
                name: name.clone(),
                id: *id,
                columns: Vec::new(),
                options: TableOptions::default(),
                next_column_id: 0,
                dropped_columns: Vec::new(),
                compact_storage: false,
            };
            keyspace.tables.insert(name, Arc::new(table));
        }
        let mut schema = Schema::default();
        schema.keyspaces.insert("ks".into(), keyspace);
        Arc::new(schema)
    }

    fn write(table: TableId, key: &'static [u8]) -> Mutation {
        Mutation::new(table, DecoratedKey::new(1, key))
            .with_row(&b"c"[..], Row::new().cell(0, Cell::live(1, &b"v"[..])))
    }

    /// Runs `body` on a fresh one-shard executor (a fresh thread local).
    fn on_shard<F, Fut, T>(body: F) -> T
    where
        F: FnOnce() -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let mut results =
            run_shards(ShardSetConfig::new(1), move |_| body.clone()()).expect("shard runs");
        results.pop().expect("one shard")
    }

    fn config() -> commitlog::Config {
        commitlog::Config {
            segment_bytes: 64 * 4096,
            sync: SyncMode::Batch,
            total_space_bytes: 1 << 30,
        }
    }

    #[test]
    fn replay_rebuilds_memtables_and_skips_dropped_tables_and_garbage() {
        // On the real disk (not tmpfs), as the commitlog's direct IO needs.
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/cluster-local-tests");
        let _ = std::fs::remove_dir_all(&dir);
        let (kept, dropped) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let first_dir = dir.clone();
        let first = on_shard(move || async move {
            init(schema_with(&[kept, dropped]));
            let summary = open_commitlog(&first_dir, 0, config()).await.expect("open");
            let writes = [write(kept, b"a"), write(dropped, b"b"), write(kept, b"c")];
            log_mutations(&writes).await.expect("log");
            let log = local().commitlog.borrow().clone().expect("opened");
            log.append(b"not a mutation").await.expect("append");
            drop(log);
            // Truncated: the first two writes of `kept` stay gone; this one stays.
            truncate_logged(kept).await.expect("truncate");
            log_mutations(&[write(kept, b"d")]).await.expect("log");
            close_commitlog().await.expect("close");
            summary
        });
        assert_eq!(first.mutations_applied, 0, "fresh log");
        let second = on_shard(move || async move {
            init(schema_with(&[kept]));
            let summary = open_commitlog(&dir, 0, config()).await.expect("reopen");
            let applied = with_db(|db| db.stats().mutations_applied);
            let range = storage::model::PartitionRange::full();
            let slice = storage::model::SliceQuery::full();
            let partitions = with_db(|db| db.scan(kept, &range, &slice, 100, 0))
                .expect("scan")
                .len();
            close_commitlog().await.expect("close");
            (summary, applied, partitions)
        });
        let (summary, applied, partitions) = second;
        assert_eq!(summary.mutations_applied, 3);
        assert_eq!(summary.unknown_table_skipped, 1);
        assert_eq!(summary.undecodable, 1);
        assert_eq!(summary.truncations, 1);
        assert_eq!(summary.log.entries_replayed, 6);
        assert_eq!(applied, 3);
        assert_eq!(partitions, 1, "only the write after the truncation");
    }

    #[test]
    fn without_a_commitlog_logging_does_nothing() {
        on_shard(|| async {
            init(schema_with(&[]));
            log_mutations(&[write(uuid::Uuid::nil(), b"k")])
                .await
                .expect("no commitlog, no error");
            assert!(commitlog_stats().is_none());
            close_commitlog().await.expect("nothing to close");
        });
    }
}
