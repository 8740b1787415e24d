//! The state one shard owns: its [`Database`], its [`Commitlog`], its copy
//! of the schema, and the flushing of its memtables.
//!
//! Writes are durable through the commitlog: [`log_mutations`] appends a
//! mutation's binary form before the caller applies it to the memtable
//! (with the position it got, so the table knows which segments it pins),
//! and [`open_commitlog`] rebuilds the memtables at start by replaying the
//! log on top of the SSTables [`open_storage`] loaded.
//!
//! Flushing: when the shard's memtables pass their share of memory
//! ([`StorageConfig::memtable_limit_bytes`]) the largest table's memtable is
//! written to an SSTable in the background, while reads and writes go on;
//! writes wait (they are not failed) only when the memtables reach twice
//! the limit. The commitlog's total-space limit flushes every table holding
//! data in the oldest segments. After each flush the commitlog discards the
//! segments no memtable needs any more.
//!
//! It lives in a thread local because a shard is a thread: jobs sent by
//! other shards with `scheduler::smp::submit_to` find it here. Nothing in it
//! is shared with another shard; the schema snapshot is an immutable `Arc`
//! that every shard holds its own reference to.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use storage::commitlog::{self, Commitlog, CommitlogError, ReplayPosition, ReplayStats};
use storage::compaction::CompactionStrategy;
use storage::database::Database;
use storage::error::StorageError;
use storage::model::{
    DecoratedKey, LogEntry, Mutation, PartitionRange, PartitionResult, SliceQuery, TableId,
};
use storage::schema::{Schema, TableDef};
use storage::sstable::SstableOptions;
use storage::table::{LoadReport, Table, TableSettings, TableStorage};

/// One shard's replica state.
pub struct LocalShard {
    db: RefCell<Database>,
    schema: RefCell<Arc<Schema>>,
    stats: Cell<ProxyStats>,
    /// `None` until [`open_commitlog`] (and in tests that need no
    /// durability): writes are then memtable-only.
    commitlog: RefCell<Option<Rc<Commitlog>>>,
    /// `None` until [`open_storage`]: tables are then memory-only.
    storage: RefCell<Option<StorageConfig>>,
    /// A background flush is running.
    flushing: Cell<bool>,
    flush_stats: Cell<FlushStats>,
    /// Commitlog segments at or after which writes being logged (not yet in
    /// a memtable) lie, oldest first, with their counts: those segments must
    /// stay. Segment ids only grow, so this is a short queue (one entry, or
    /// two across a segment switch), cheap to touch on every write.
    writes_in_flight: RefCell<std::collections::VecDeque<(u64, usize)>>,
    /// Tables with a background compaction loop running.
    compacting: RefCell<std::collections::HashSet<TableId>>,
    /// Per-partition locks serializing compare-and-set operations.
    cas_locks: RefCell<HashMap<(TableId, DecoratedKey), Rc<scheduler::sync::Semaphore>>>,
}

/// Where a shard keeps its tables and how much memory its memtables may use.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The data directory: tables live in `<data_dir>/<keyspace>/<table>-<id>/`.
    pub data_dir: PathBuf,
    /// This shard.
    pub shard: u32,
    /// How many shards the node runs.
    pub shard_count: u32,
    /// Memtable bytes above which this shard flushes its largest memtable.
    pub memtable_limit_bytes: usize,
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
    /// Mutations already in SSTables (before their table's replay floor), skipped.
    pub already_flushed: u64,
}

/// What this shard's coordinator did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests whose data this shard owns, run with no message.
    pub local_requests: u64,
    /// Requests sent to the shard that owns their data.
    pub forwarded_requests: u64,
}

/// This shard's flush counters, over all tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Memtables written to SSTables.
    pub flushes: u64,
    /// Flushes that failed (their memtables stay and are retried).
    pub failures: u64,
    /// Times a write waited for a flush to free memory.
    pub write_stalls: u64,
}

thread_local! {
    static LOCAL: RefCell<Option<Rc<LocalShard>>> = const { RefCell::new(None) };
}

/// Installs this shard's state, with memory-only tables; called once when
/// the shard starts ([`open_storage`] then gives the tables their files).
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
            storage: RefCell::new(None),
            flushing: Cell::new(false),
            flush_stats: Cell::new(FlushStats::default()),
            compacting: RefCell::new(Default::default()),
            writes_in_flight: RefCell::new(Default::default()),
            cas_locks: RefCell::new(HashMap::new()),
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

/// The table `id` of this shard.
pub fn table(id: TableId) -> Result<Rc<Table>, StorageError> {
    with_db(|db| db.existing(id))
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

/// This shard's flush counters.
pub fn flush_stats() -> FlushStats {
    local().flush_stats.get()
}

fn update_flush_stats(f: impl FnOnce(&mut FlushStats)) {
    let shard = local();
    let mut stats = shard.flush_stats.get();
    f(&mut stats);
    shard.flush_stats.set(stats);
}

/// This shard's current schema snapshot.
pub fn schema() -> Arc<Schema> {
    local().schema.borrow().clone()
}

/// The directory of `table` under `data_dir`.
pub fn table_dir(data_dir: &Path, table: &TableDef) -> PathBuf {
    data_dir
        .join(&table.keyspace)
        .join(format!("{}-{}", table.name, table.id.simple()))
}

/// How `table`'s SSTables are written, from its options.
fn sstable_options(table: &TableDef) -> SstableOptions {
    let defaults = SstableOptions::default();
    let chunk_kb = table
        .options
        .compression
        .get("chunk_length_in_kb")
        .and_then(|kb| kb.parse::<usize>().ok())
        .filter(|kb| kb.is_power_of_two() && *kb <= 1024);
    let fp = table.options.bloom_filter_fp_chance;
    SstableOptions {
        chunk_size: chunk_kb.map_or(defaults.chunk_size, |kb| kb * 1024),
        bloom_fp_chance: if fp > 0.0 && fp < 1.0 {
            fp
        } else {
            defaults.bloom_fp_chance
        },
        ..defaults
    }
}

fn table_storage(config: &StorageConfig, table: &TableDef) -> TableStorage {
    TableStorage {
        dir: table_dir(&config.data_dir, table),
        shard: config.shard,
        shard_count: config.shard_count,
    }
}

/// How `table`'s SSTables are written and compacted, from its options. The
/// CQL layer validated the compaction map; a map it let through that the
/// engine cannot run falls back to the default strategy, with a warning.
fn table_settings(table: &TableDef) -> TableSettings {
    let compaction =
        CompactionStrategy::from_options(&table.options.compaction).unwrap_or_else(|error| {
            tracing::warn!(
                table = %format!("{}.{}", table.keyspace, table.name),
                %error,
                "compaction options not usable; using the default strategy"
            );
            TableSettings::default().compaction
        });
    TableSettings {
        sstable: sstable_options(table),
        compaction,
        gc_grace_seconds: table.options.gc_grace_seconds,
    }
}

/// Gives every table of the schema its directory and opens this shard's
/// SSTables there; later tables get theirs when created. Runs once at
/// start, before the commitlog is replayed on top.
pub async fn open_storage(config: StorageConfig) -> Result<LoadReport, StorageError> {
    let mut total = LoadReport::default();
    for def in schema().tables() {
        let (table, report) =
            Table::open(def.id, table_storage(&config, def), table_settings(def)).await?;
        table.set_replay_floor_source(Rc::new(replay_floor));
        total.opened += report.opened;
        total.incomplete_removed += report.incomplete_removed;
        total.quarantined += report.quarantined;
        with_db(|db| {
            let _ = db.drop_table(def.id);
            db.add_table(table)
        })?;
    }
    *local().storage.borrow_mut() = Some(config);
    // SSTables left from before may already call for compaction.
    for table in with_db(|db| db.tables().cloned().collect::<Vec<_>>()) {
        maybe_compact(table);
    }
    Ok(total)
}

/// Replaces this shard's schema snapshot and creates or drops the tables
/// that appeared or disappeared (a dropped table's files are deleted).
pub async fn set_schema(new: Arc<Schema>) -> Result<(), StorageError> {
    let shard = local();
    let old = shard.schema.replace(new.clone());
    let storage = shard.storage.borrow().clone();
    for def in new.tables() {
        if let Some(table) = with_db(|db| db.table(def.id).cloned()) {
            if old
                .table_by_id(def.id)
                .is_some_and(|o| o.options != def.options)
            {
                // ALTER TABLE ... WITH: new SSTables and compactions follow.
                table.set_settings(table_settings(def));
                maybe_compact(table);
            }
            continue;
        }
        match &storage {
            Some(config) => {
                let (table, _) =
                    Table::open(def.id, table_storage(config, def), table_settings(def)).await?;
                table.set_replay_floor_source(Rc::new(replay_floor));
                // Another schema change may have created it meanwhile.
                let _ = with_db(|db| db.add_table(table));
            }
            None => {
                let _ = with_db(|db| db.create_table(def.id));
            }
        }
    }
    for def in old.tables() {
        if new.table_by_id(def.id).is_some() {
            continue;
        }
        let Ok(table) = with_db(|db| db.drop_table(def.id)) else {
            continue;
        };
        table.drop_data().await?;
        if let Some(dir) = table.storage().map(|s| s.dir.clone()) {
            remove_table_dir(dir).await;
        }
    }
    Ok(())
}

/// Removes a dropped table's directory once it is empty (every shard
/// deletes its own SSTables; the last one to finish removes the directory),
/// and its keyspace's directory if that is empty then.
async fn remove_table_dir(dir: PathBuf) {
    let removed = scheduler::spawn_blocking(move || {
        let remove = |dir: &Path| match std::fs::remove_dir(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc_enotempty()) => Ok(()),
            Err(e) => Err((dir.to_path_buf(), e)),
        };
        remove(&dir)?;
        // The keyspace's directory too, once its last table is gone.
        dir.parent().map_or(Ok(()), remove)
    })
    .await;
    if let Err((dir, error)) = removed {
        tracing::warn!(dir = %dir.display(), %error, "could not remove a dropped table's directory");
    }
}

/// `ENOTEMPTY` on Linux.
const fn libc_enotempty() -> i32 {
    39
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
    // Entries a table's SSTables already hold are not applied again.
    let floors: HashMap<TableId, ReplayPosition> = with_db(|db| {
        db.tables()
            .filter_map(|t| Some((t.id(), t.replay_floor()?)))
            .collect()
    });
    let mut apply = |position: ReplayPosition, payload: &[u8]| {
        replay_entry(&mut summary, &floors, position, payload);
    };
    let (log, stats) = Commitlog::open_with(dir, shard, config, &mut apply).await?;
    summary.log = stats;
    let log = Rc::new(log);
    log.set_space_pressure_callback(Rc::new(|before: ReplayPosition| {
        scheduler::spawn_detached_in(scheduler::Group::Flush, flush_older_than(before));
    }));
    *local().commitlog.borrow_mut() = Some(log);
    Ok(summary)
}

fn replay_entry(
    summary: &mut ReplaySummary,
    floors: &HashMap<TableId, ReplayPosition>,
    position: ReplayPosition,
    payload: &[u8],
) {
    let mutation = match LogEntry::decode(payload) {
        Ok(LogEntry::Mutation(mutation)) => *mutation,
        Ok(LogEntry::Truncate { table }) => {
            // Everything logged before it is gone from the memtables. The
            // SSTables on disk were deleted before the entry was logged, so
            // those there now were written after it and stay.
            if let Ok(table) = self::table(table) {
                table.clear_memtables();
            }
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
    if floors
        .get(&mutation.table)
        .is_some_and(|floor| position < *floor)
    {
        summary.already_flushed += 1;
        return;
    }
    match with_db(|db| db.apply(&mutation, Some(position))) {
        Ok(()) => summary.mutations_applied += 1,
        Err(_) => summary.unknown_table_skipped += 1,
    }
}

/// Appends `mutations` to this shard's commitlog and waits as its sync mode
/// says: in batch mode until they are durable, in periodic mode not at all.
/// The appends are issued together so that they share one group commit.
/// Returns each mutation's position (`None` without a commitlog: not opened,
/// writes are then memtable-only).
pub async fn log_mutations(
    mutations: &[Mutation],
) -> Result<Vec<Option<ReplayPosition>>, CommitlogError> {
    let Some(log) = local().commitlog.borrow().clone() else {
        return Ok(vec![None; mutations.len()]);
    };
    if let [mutation] = mutations {
        // The common single write: no vectors of payloads and futures.
        return Ok(vec![Some(log.append(&mutation.encode()).await?)]);
    }
    let payloads: Vec<Vec<u8>> = mutations.iter().map(Mutation::encode).collect();
    let appends = payloads.iter().map(|payload| log.append(payload));
    join_all(appends)
        .await
        .into_iter()
        .map(|r| r.map(Some))
        .collect()
}

/// Marks a write between its commitlog append and its memtable apply, so
/// that a flush finishing meanwhile does not discard the segment holding it
/// (the write is in no memtable yet, so no table pins it). Drop it once the
/// write is applied or has failed.
pub struct WriteInFlight {
    segment_id: Option<u64>,
}

impl Drop for WriteInFlight {
    fn drop(&mut self) {
        let Some(segment_id) = self.segment_id else {
            return;
        };
        let shard = local();
        let mut in_flight = shard.writes_in_flight.borrow_mut();
        if let Some(index) = in_flight.iter().position(|(id, _)| *id == segment_id) {
            in_flight[index].1 -= 1;
            if in_flight[index].1 == 0 {
                in_flight.remove(index);
            }
        }
    }
}

/// Starts a write: every append it makes from now on lands in the segment
/// being written now or a later one, which stay until the guard is dropped.
pub fn begin_write() -> WriteInFlight {
    let shard = local();
    let segment_id = shard
        .commitlog
        .borrow()
        .as_ref()
        .map(|log| log.current_segment_start().segment_id);
    if let Some(segment_id) = segment_id {
        let mut in_flight = shard.writes_in_flight.borrow_mut();
        match in_flight.back_mut() {
            Some((newest, count)) if *newest == segment_id => *count += 1,
            _ => {
                debug_assert!(in_flight.back().is_none_or(|(id, _)| *id < segment_id));
                in_flight.push_back((segment_id, 1));
            }
        }
    }
    WriteInFlight { segment_id }
}

/// The start of the oldest segment a write in flight may lie in.
fn oldest_write_in_flight() -> Option<ReplayPosition> {
    let oldest = local().writes_in_flight.borrow().front().map(|(id, _)| *id);
    oldest.map(|segment_id| ReplayPosition {
        segment_id,
        offset: 0,
    })
}

/// The position before which every logged write of this shard is in a
/// memtable or an SSTable: the oldest write still between its append and
/// its apply, or else the position the next append gets. A table records
/// it when it seals a memtable.
fn replay_floor() -> Option<ReplayPosition> {
    oldest_write_in_flight().or_else(|| {
        local()
            .commitlog
            .borrow()
            .as_ref()
            .map(|log| log.next_position())
    })
}

/// Applies mutations already logged at `positions` to the memtables, then
/// starts a flush if the memtables passed their limit.
pub fn apply_logged(
    mutations: &[Mutation],
    positions: &[Option<ReplayPosition>],
) -> Result<(), StorageError> {
    with_db(|db| {
        mutations
            .iter()
            .zip(positions.iter().copied().chain(std::iter::repeat(None)))
            .try_for_each(|(m, position)| db.apply(m, position))
    })?;
    maybe_flush();
    Ok(())
}

/// Reads one partition of `table` on this shard.
pub async fn read_partition(
    table: TableId,
    key: &DecoratedKey,
    slice: &SliceQuery,
    now_secs: i32,
) -> Result<Option<PartitionResult>, StorageError> {
    let result = self::table(table)?
        .read_partition(key, slice, now_secs)
        .await?;
    with_db(|db| db.count_reads(result.as_slice()));
    Ok(result)
}

/// Scans `range` of `table` on this shard (see [`Table::scan`]).
pub async fn scan(
    table: TableId,
    range: &PartitionRange,
    slice: &SliceQuery,
    partition_limit: usize,
    now_secs: i32,
) -> Result<Vec<PartitionResult>, StorageError> {
    let results = self::table(table)?
        .scan(range, slice, partition_limit, now_secs)
        .await?;
    with_db(|db| db.count_reads(&results));
    Ok(results)
}

/// Holds the compare-and-set lock of one partition until dropped.
pub struct CasLock {
    key: (TableId, DecoratedKey),
    lock: Rc<scheduler::sync::Semaphore>,
}

impl Drop for CasLock {
    fn drop(&mut self) {
        self.lock.signal(1);
        // The last holder (no waiter has a handle) removes the entry.
        let shard = local();
        let mut locks = shard.cas_locks.borrow_mut();
        if Rc::strong_count(&self.lock) == 2 {
            locks.remove(&self.key);
        }
    }
}

/// Waits for the compare-and-set lock of `key` in `table`: compare-and-set
/// operations on one partition run one at a time on its shard, so each
/// one's read, check and write see no other's in between.
pub async fn lock_partition(table: TableId, key: &DecoratedKey) -> CasLock {
    let entry = (table, key.clone());
    let lock = local()
        .cas_locks
        .borrow_mut()
        .entry(entry.clone())
        .or_insert_with(|| Rc::new(scheduler::sync::Semaphore::new(1)))
        .clone();
    // The semaphore is never closed, so acquiring cannot fail.
    let _ = lock.acquire(1).await;
    CasLock { key: entry, lock }
}

/// Truncates `table`: drops its memtables and deletes its SSTables on this
/// shard, then logs the truncation, so that replay truncates the memtables
/// it rebuilds at the same point of the log.
///
/// The memtables are truncated first, then the entry is appended: a write
/// applied before the truncation was logged before it. A write concurrent
/// with the truncation (logged before it, applied after) may be kept now
/// and truncated after a restart; TRUNCATE gives writes racing with it no
/// promise either way.
pub async fn truncate_logged(table: TableId) -> Result<(), TruncateError> {
    let table_ref = self::table(table).map_err(TruncateError::Storage)?;
    table_ref.truncate().await.map_err(TruncateError::Storage)?;
    let Some(log) = local().commitlog.borrow().clone() else {
        return Ok(());
    };
    let entry = LogEntry::Truncate { table }.encode();
    log.append(&entry).await.map_err(TruncateError::Commitlog)?;
    discard_flushed_segments();
    Ok(())
}

/// Why [`truncate_logged`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TruncateError {
    #[error(transparent)]
    Storage(StorageError),
    #[error(transparent)]
    Commitlog(CommitlogError),
}

/// Starts a background flush of the largest memtables if this shard's
/// memtables passed their limit and none is running.
pub fn maybe_flush() {
    let shard = local();
    let Some(limit) = memtable_limit() else {
        return;
    };
    if shard.flushing.get() || active_memtable_bytes() < limit {
        return;
    }
    shard.flushing.set(true);
    scheduler::spawn_detached_in(scheduler::Group::Flush, async move {
        // Flush the largest until the active memtables are under half the limit.
        while active_memtable_bytes() > limit / 2 {
            let largest =
                with_db(|db| db.tables().max_by_key(|t| t.active_memory_bytes()).cloned());
            let Some(table) = largest else { break };
            if !flush_table(&table).await {
                break;
            }
        }
        local().flushing.set(false);
    });
}

/// The shard's memtable limit (`None`: memory-only tables, never flushed).
fn memtable_limit() -> Option<usize> {
    local()
        .storage
        .borrow()
        .as_ref()
        .map(|c| c.memtable_limit_bytes)
}

fn active_memtable_bytes() -> usize {
    with_db(|db| db.active_memory_bytes())
}

/// Waits while this shard's memtables (active and being flushed) hold more
/// than twice their limit: the flushes cannot keep up, so writers are held
/// back until they do. Never fails.
pub async fn wait_for_memtable_room() {
    let Some(limit) = memtable_limit() else {
        return;
    };
    let mut stalled = false;
    while with_db(|db| db.memory_bytes()) > limit.saturating_mul(2) {
        if !stalled {
            stalled = true;
            update_flush_stats(|s| s.write_stalls += 1);
        }
        maybe_flush();
        scheduler::sleep(Duration::from_millis(1)).await;
    }
}

/// Flushes one table; logs and counts a failure. Returns whether it worked.
async fn flush_table(table: &Rc<Table>) -> bool {
    match table.flush().await {
        Ok(written) => {
            update_flush_stats(|s| s.flushes += written.len() as u64);
            discard_flushed_segments();
            maybe_compact(Rc::clone(table));
            true
        }
        Err(error) => {
            update_flush_stats(|s| s.failures += 1);
            tracing::error!(table = %table.id(), %error, "memtable flush failed; will retry");
            false
        }
    }
}

/// Flushes every table holding writes logged before `before` (the
/// commitlog's total-space limit).
async fn flush_older_than(before: ReplayPosition) {
    let tables: Vec<Rc<Table>> = with_db(|db| {
        db.tables()
            .filter(|t| t.min_dirty_position().is_some_and(|p| p < before))
            .cloned()
            .collect()
    });
    for table in tables {
        flush_table(&table).await;
    }
}

/// Flushes every memtable of this shard (the stop path, and an operator's
/// flush). Returns the first error, after trying every table.
pub async fn flush_all() -> Result<(), StorageError> {
    let tables: Vec<Rc<Table>> = with_db(|db| db.tables().cloned().collect());
    let mut first_error = None;
    for table in tables {
        match table.flush().await {
            Ok(written) => {
                update_flush_stats(|s| s.flushes += written.len() as u64);
                if !written.is_empty() {
                    maybe_compact(table);
                }
            }
            Err(error) => {
                update_flush_stats(|s| s.failures += 1);
                first_error.get_or_insert(error);
            }
        }
    }
    discard_flushed_segments();
    first_error.map_or(Ok(()), Err)
}

/// Flushes every memtable of one table on this shard (an operator's flush).
pub async fn flush(table: TableId) -> Result<(), StorageError> {
    let table = self::table(table)?;
    let result = table.flush().await;
    match &result {
        Ok(written) => {
            update_flush_stats(|s| s.flushes += written.len() as u64);
            if !written.is_empty() {
                maybe_compact(Rc::clone(&table));
            }
        }
        Err(_) => update_flush_stats(|s| s.failures += 1),
    }
    discard_flushed_segments();
    result.map(drop)
}

/// Starts a background loop running `table`'s compactions while its
/// strategy finds work, unless one runs already. A failed compaction is
/// logged and counted by the table; the loop stops and the next flush
/// starts it again.
pub fn maybe_compact(table: Rc<Table>) {
    if table.storage().is_none() || !local().compacting.borrow_mut().insert(table.id()) {
        return;
    }
    update_compaction_backlog();
    scheduler::spawn_detached_in(scheduler::Group::Compaction, async move {
        while let Ok(true) = table.compact_once().await {
            update_compaction_backlog();
        }
        local().compacting.borrow_mut().remove(&table.id());
        update_compaction_backlog();
    });
}

/// Tells the IO scheduler's controller how much this shard has left to
/// compact, so compaction's shares follow its backlog.
fn update_compaction_backlog() {
    let backlog = with_db(|db| db.tables().map(|t| t.compaction_backlog_bytes()).sum());
    scheduler::set_compaction_backlog(backlog);
}

/// Runs a major compaction of `table` on this shard (after flushing it):
/// every SSTable into one run. Returns whether there was anything to do.
pub async fn major_compaction(table: TableId) -> Result<bool, StorageError> {
    let table = self::table(table)?;
    let compacted = table.major_compaction().await?;
    discard_flushed_segments();
    Ok(compacted)
}

/// Per-table storage counters of this shard, summed over its tables.
pub fn table_stats() -> storage::table::TableStats {
    with_db(|db| {
        db.tables()
            .fold(storage::table::TableStats::default(), |mut sum, t| {
                let s = t.stats();
                sum.flushes += s.flushes;
                sum.flush_failures += s.flush_failures;
                sum.flushed_bytes += s.flushed_bytes;
                sum.sstable_reads += s.sstable_reads;
                sum.sstable_read_errors += s.sstable_read_errors;
                sum.compactions += s.compactions;
                sum.compaction_failures += s.compaction_failures;
                sum.compacted_bytes_in += s.compacted_bytes_in;
                sum.compacted_bytes_out += s.compacted_bytes_out;
                sum
            })
    })
}

/// Live SSTables of this shard, over all tables.
pub fn sstable_count() -> usize {
    with_db(|db| db.tables().map(|t| t.sstable_count()).sum())
}

/// Lets the commitlog drop every segment whose writes are all in SSTables.
fn discard_flushed_segments() {
    let Some(log) = local().commitlog.borrow().clone() else {
        return;
    };
    let in_flight = oldest_write_in_flight();
    let before = with_db(|db| db.min_dirty_position())
        .into_iter()
        .chain(in_flight)
        .min()
        .unwrap_or_else(|| log.current_segment_start());
    log.discard_before(before);
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
    fn replay_skips_what_sstables_hold() {
        let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/cluster-local-floor");
        let _ = std::fs::remove_dir_all(&base);
        let table = uuid::Uuid::new_v4();
        let storage = StorageConfig {
            data_dir: base.join("data"),
            shard: 0,
            shard_count: 1,
            memtable_limit_bytes: 64 << 20,
        };
        let run = move |flush_last: bool| {
            let (storage, log_dir) = (storage.clone(), base.join("log"));
            on_shard(move || async move {
                init(schema_with(&[table]));
                open_storage(storage).await.expect("storage");
                let summary = open_commitlog(&log_dir, 0, config()).await.expect("open");
                let mutations = [write(table, b"a"), write(table, b"b")];
                let in_flight = begin_write();
                let positions = log_mutations(&mutations).await.expect("log");
                apply_logged(&mutations, &positions).expect("apply");
                drop(in_flight);
                if flush_last {
                    flush_all().await.expect("flush");
                }
                let range = PartitionRange::full();
                let slice = SliceQuery::full();
                let partitions = scan(table, &range, &slice, 100, 0).await.expect("scan");
                close_commitlog().await.expect("close");
                (summary, partitions.len())
            })
        };
        // Written and flushed, then written again (same two keys) and not flushed.
        let (first, _) = run(true);
        assert_eq!(first.mutations_applied, 0);
        let (second, partitions) = run(false);
        assert_eq!((second.already_flushed, second.mutations_applied), (2, 0));
        assert_eq!(partitions, 2);
        // The unflushed writes replay; the flushed ones are skipped again.
        let (third, partitions) = run(true);
        assert_eq!((third.already_flushed, third.mutations_applied), (2, 2));
        assert_eq!(partitions, 2);
        let (fourth, _) = run(false);
        assert_eq!(fourth.mutations_applied, 0, "everything is in SSTables");
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
            let partitions = scan(kept, &range, &slice, 100, 0)
                .await
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
            let positions = log_mutations(&[write(uuid::Uuid::nil(), b"k")])
                .await
                .expect("no commitlog, no error");
            assert_eq!(positions, vec![None]);
            assert!(commitlog_stats().is_none());
            close_commitlog().await.expect("nothing to close");
        });
    }
}
