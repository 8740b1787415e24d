//! One table on one shard: where its writes go, how its memtables become SSTables, and
//! how its reads merge every source.
//!
//! Writes go to the active memtable. A flush seals it (moves it to the list of memtables
//! being flushed, shared with the flush through an `Rc`), starts an empty one, writes the
//! sealed one to an SSTable, and then, with no await in between, adds the SSTable and
//! forgets the sealed memtable: at every instant each write is in exactly one place a
//! read looks at (or in two, which reconciliation makes harmless).
//!
//! Reads merge the active memtable, the sealed ones and the SSTables that may hold the
//! data through [`crate::model::query`], which is agnostic of where a version came from.
//! SSTable reads await IO, so a read can see the set of sources change under it: a flush
//! or a compaction may finish while it waits. A read therefore remembers which SSTables
//! it has read and, in the synchronous step that reads the memtables and merges, first
//! checks for SSTables it has not seen; if there are any, it reads them too and tries
//! again. Reading an extra source is always safe (merging is idempotent); missing one
//! is not, and this rule makes it impossible: data only ever moves from the active
//! memtable to a sealed one to an SSTable, and the last two steps are atomic.
//!
//! The table lives in an `Rc` owned by its shard's [`crate::database::Database`]; its
//! state sits in a `RefCell` that is only ever borrowed between awaits.

use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::commitlog::ReplayPosition;
use crate::compaction::{
    self, CompactionError, CompactionJob, CompactionStrategy, CompactionTxn, OutputOptions,
    PurgeOptions, SstableInfo,
};
use crate::error::StorageError;
use crate::memtable::{Memtable, PartitionSource};
use crate::model::merge::{MergeByKey, SortedSource};
use crate::model::query::read_partition;
use crate::model::{
    DecoratedKey, Mutation, Partition, PartitionRange, PartitionResult, RingPosition, SliceQuery,
    TableId,
};
use crate::sstable::{Component, Sstable, SstableError, SstableMeta, SstableOptions};

/// Partitions a scan reads from one SSTable at a time.
const SCAN_BATCH_PARTITIONS: usize = 64;

/// Bits of a generation number that name the shard that wrote it.
const GENERATION_SHARD_BITS: u32 = 10;
/// Largest shard count the generation numbering supports.
pub const MAX_SHARDS: u32 = 1 << GENERATION_SHARD_BITS;

/// Where one shard keeps a table's SSTables.
#[derive(Debug, Clone)]
pub struct TableStorage {
    /// The table's directory (shared by every shard; generations say whose each SSTable is).
    pub dir: PathBuf,
    /// This shard.
    pub shard: u32,
    /// How many shards the node runs.
    pub shard_count: u32,
}

/// How a table's SSTables are written and compacted (from its schema options; an ALTER
/// changes them with [`Table::set_settings`]).
#[derive(Debug, Clone)]
pub struct TableSettings {
    /// How new SSTables are written.
    pub sstable: SstableOptions,
    /// The compaction strategy.
    pub compaction: CompactionStrategy,
    /// Seconds a tombstone is kept before compaction may purge it.
    pub gc_grace_seconds: i32,
}

impl Default for TableSettings {
    fn default() -> Self {
        Self {
            sstable: SstableOptions::default(),
            compaction: CompactionStrategy::from_options(&Default::default())
                .expect("the default strategy parses"),
            gc_grace_seconds: 864_000,
        }
    }
}

/// An SSTable generation number: `sequence << 20 | shard_count << 10 | shard`, so every
/// SSTable names the shard that owns its data and the shard count that ownership
/// assumed, and shards never pick the same number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u64);

impl Generation {
    /// The generation `sequence` of `shard` of `shard_count`.
    pub fn new(sequence: u64, shard: u32, shard_count: u32) -> Self {
        let bits = GENERATION_SHARD_BITS;
        Generation(
            (sequence << (2 * bits))
                | (u64::from(shard_count % MAX_SHARDS) << bits)
                | u64::from(shard),
        )
    }

    /// The per-table sequence number.
    pub fn sequence(self) -> u64 {
        self.0 >> (2 * GENERATION_SHARD_BITS)
    }

    /// The shard that wrote it.
    pub fn shard(self) -> u32 {
        (self.0 & u64::from(MAX_SHARDS - 1)) as u32
    }

    /// The shard count it was written under (`MAX_SHARDS` is stored as 0).
    pub fn shard_count(self) -> u32 {
        match ((self.0 >> GENERATION_SHARD_BITS) & u64::from(MAX_SHARDS - 1)) as u32 {
            0 => MAX_SHARDS,
            n => n,
        }
    }
}

/// What opening a table's directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// SSTables of this shard opened.
    pub opened: usize,
    /// Generations without a TOC (an interrupted write), whose files were removed.
    pub incomplete_removed: usize,
    /// SSTables that failed to open, moved to the `quarantine` subdirectory.
    pub quarantined: usize,
}

/// Counters of one table on one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Memtables written to SSTables.
    pub flushes: u64,
    /// Flushes that failed (the memtable stays and is retried).
    pub flush_failures: u64,
    /// Bytes written by flushes (Data.db).
    pub flushed_bytes: u64,
    /// SSTable partition lookups issued by reads (after the bloom filter).
    pub sstable_reads: u64,
    /// Reads that failed on an SSTable error (checksum, IO).
    pub sstable_read_errors: u64,
    /// Compactions finished.
    pub compactions: u64,
    /// Compactions that failed (their inputs stay).
    pub compaction_failures: u64,
    /// Data bytes read by compactions (the inputs' `Data.db`).
    pub compacted_bytes_in: u64,
    /// Data bytes written by compactions.
    pub compacted_bytes_out: u64,
}

/// A memtable being flushed, the oldest commitlog position of its writes, and the
/// replay floor at its sealing (every write of the table logged before it was then in
/// this memtable, an older one, or an SSTable).
#[derive(Debug)]
struct SealedMemtable {
    memtable: Rc<Memtable>,
    min_position: Option<ReplayPosition>,
    replay_floor: Option<ReplayPosition>,
}

/// Tells a table, when it seals a memtable, the commitlog position before which every
/// write already reached a memtable: the position the next append would get, or the
/// floor of a write still between its append and its apply.
pub type ReplayFloorSource = Rc<dyn Fn() -> Option<ReplayPosition>>;

/// A [`ReplayFloorSource`] a table holds (for `Debug`).
struct FloorSource(ReplayFloorSource);

impl std::fmt::Debug for FloorSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FloorSource")
    }
}

#[derive(Debug, Default)]
struct State {
    memtable: Memtable,
    /// The oldest commitlog position of a write in `memtable`.
    memtable_min_position: Option<ReplayPosition>,
    /// Sealed memtables still being flushed, oldest first.
    flushing: Vec<SealedMemtable>,
    /// Live SSTables, oldest first.
    sstables: Vec<Rc<Sstable>>,
    /// Bumped by every change of `sstables`, so a running compaction knows when the
    /// SSTables outside it changed.
    sstables_version: u64,
    /// Bumped by every truncation: a flush that sealed before one throws its output away.
    truncations: u64,
    /// Set when the table is dropped: flushes still running throw their output away.
    dropped: bool,
    /// The next generation sequence number.
    next_sequence: u64,
    /// Generations that are inputs of a compaction running now.
    compacting: Vec<u64>,
}

/// The bytes a shard's memtables hold, shared by its tables and kept
/// current on every change, so that the flush policy and write back-pressure
/// read two numbers on each write instead of summing over every table.
#[derive(Debug, Default)]
pub struct MemtableMemory {
    active: Cell<usize>,
    total: Cell<usize>,
}

impl MemtableMemory {
    /// Bytes in the tables' active memtables.
    pub fn active_bytes(&self) -> usize {
        self.active.get()
    }

    /// Bytes in the active and the sealed (being flushed) memtables.
    pub fn total_bytes(&self) -> usize {
        self.total.get()
    }

    /// Moves the account from `before` to `after` (active, total) bytes.
    fn change(&self, before: (usize, usize), after: (usize, usize)) {
        let shift = |cell: &Cell<usize>, from: usize, to: usize| {
            cell.set(cell.get().wrapping_sub(from).wrapping_add(to));
        };
        shift(&self.active, before.0, after.0);
        shift(&self.total, before.1, after.1);
    }
}

/// A table's (active, total) memtable bytes.
fn memtable_sizes(state: &State) -> (usize, usize) {
    let active = state.memtable.memory_bytes();
    let sealed: usize = state
        .flushing
        .iter()
        .map(|s| s.memtable.memory_bytes())
        .sum();
    (active, active + sealed)
}

/// One table's data on one shard.
#[derive(Debug)]
pub struct Table {
    id: TableId,
    storage: Option<TableStorage>,
    settings: RefCell<TableSettings>,
    state: RefCell<State>,
    replay_floor_source: RefCell<Option<FloorSource>>,
    /// Flushes of this table run one at a time, in seal order.
    flush_lock: scheduler::sync::Semaphore,
    stats: Cell<TableStats>,
    /// The account of the shard's memtable memory this table reports to.
    memory: Rc<MemtableMemory>,
}

impl Drop for Table {
    fn drop(&mut self) {
        // Its memtables are freed now.
        let sizes = memtable_sizes(self.state.get_mut());
        self.memory.change(sizes, (0, 0));
    }
}

impl Table {
    /// An empty table held in memory only (it cannot flush).
    pub fn new(id: TableId) -> Self {
        Self::with_state(id, None, TableSettings::default(), State::default())
    }

    fn with_state(
        id: TableId,
        storage: Option<TableStorage>,
        settings: TableSettings,
        state: State,
    ) -> Self {
        Self {
            id,
            storage,
            settings: RefCell::new(settings),
            state: RefCell::new(state),
            replay_floor_source: RefCell::new(None),
            flush_lock: scheduler::sync::Semaphore::new(1),
            stats: Cell::new(TableStats::default()),
            memory: Rc::default(),
        }
    }

    /// Opens a table stored in `storage.dir` (created if missing): finishes or undoes
    /// this shard's compactions a crash interrupted, opens its complete SSTables,
    /// removes the files of incomplete ones and moves damaged ones to `quarantine/`.
    /// Fails if an SSTable was written under another shard count, since its data would
    /// be owned by the wrong shards.
    pub async fn open(
        id: TableId,
        storage: TableStorage,
        settings: TableSettings,
    ) -> Result<(Table, LoadReport), StorageError> {
        let dir = storage.dir.clone();
        let io = |op: &'static str| {
            let dir = dir.clone();
            move |e: std::io::Error| StorageError::Io {
                op,
                path: dir,
                message: e.to_string(),
            }
        };
        scheduler::io::create_dir_all(&dir)
            .await
            .map_err(io("create directory"))?;
        let shard = storage.shard;
        compaction::recover_owned(&dir, &|log_id| Generation(log_id).shard() == shard)
            .await
            .map_err(|e| StorageError::compaction(id, &e))?;
        let entries = scheduler::io::list_directory(&dir)
            .await
            .map_err(io("list directory"))?;
        let mut generations: std::collections::BTreeMap<u64, (bool, Vec<PathBuf>)> =
            Default::default();
        for entry in entries.iter().filter(|e| e.is_file) {
            if let Some((generation, component)) = parse_component_name(&entry.name) {
                let slot = generations.entry(generation).or_default();
                slot.0 |= component == Component::Toc;
                slot.1.push(entry.path.clone());
            }
        }
        let mut report = LoadReport::default();
        let mut state = State::default();
        for (&raw, (has_toc, files)) in &generations {
            let generation = Generation(raw);
            state.next_sequence = state.next_sequence.max(generation.sequence() + 1);
            if generation.shard_count() != storage.shard_count {
                return Err(StorageError::ShardCountChanged {
                    dir: dir.clone(),
                    generation: raw,
                    written_with: generation.shard_count(),
                    running: storage.shard_count,
                });
            }
            if generation.shard() != storage.shard {
                continue;
            }
            if !has_toc {
                for file in files {
                    scheduler::io::remove_file(file)
                        .await
                        .map_err(io("remove incomplete sstable file"))?;
                }
                report.incomplete_removed += 1;
                tracing::info!(dir = %dir.display(), generation = raw, "removed an incomplete sstable");
                continue;
            }
            match Sstable::open(&dir, raw).await {
                Ok(sstable) => {
                    state.sstables.push(Rc::new(sstable));
                    state.sstables_version += 1;
                    report.opened += 1;
                }
                Err(error) => {
                    tracing::error!(
                        dir = %dir.display(),
                        generation = raw,
                        %error,
                        "sstable is damaged; moved to quarantine/ and not served"
                    );
                    quarantine(&dir, files)
                        .await
                        .map_err(io("quarantine sstable"))?;
                    report.quarantined += 1;
                }
            }
        }
        if report.incomplete_removed > 0 {
            scheduler::io::sync_directory(&dir)
                .await
                .map_err(io("sync directory"))?;
        }
        Ok((Self::with_state(id, Some(storage), settings, state), report))
    }

    /// The table's id.
    pub fn id(&self) -> TableId {
        self.id
    }

    /// Where the table keeps its SSTables, if it has storage.
    pub fn storage(&self) -> Option<&TableStorage> {
        self.storage.as_ref()
    }

    /// Replaces the table's settings (an ALTER TABLE); new SSTables and compactions use
    /// them.
    pub fn set_settings(&self, settings: TableSettings) {
        *self.settings.borrow_mut() = settings;
    }

    /// Makes the table report its memtable memory to `memory` (the shard's
    /// account) from now on, moving what it holds there.
    pub fn share_memory_account(&mut self, memory: Rc<MemtableMemory>) {
        let sizes = memtable_sizes(self.state.get_mut());
        self.memory.change(sizes, (0, 0));
        memory.change((0, 0), sizes);
        self.memory = memory;
    }

    /// Runs `change` on the state and reports the memtable bytes it added or
    /// freed to the shard's account.
    fn change_memtables<R>(&self, change: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.borrow_mut();
        let before = memtable_sizes(&state);
        let result = change(&mut state);
        self.memory.change(before, memtable_sizes(&state));
        result
    }

    /// Sets where the table learns its replay floor when it seals a memtable (the
    /// shard's commitlog); without one, its SSTables record none.
    pub fn set_replay_floor_source(&self, source: ReplayFloorSource) {
        *self.replay_floor_source.borrow_mut() = Some(FloorSource(source));
    }

    /// The commitlog position before which replay may skip this table's entries: the
    /// highest floor its SSTables record.
    pub fn replay_floor(&self) -> Option<ReplayPosition> {
        self.state
            .borrow()
            .sstables
            .iter()
            .filter_map(|s| s.stats().replay_floor)
            .max()
    }

    /// The table's counters.
    pub fn stats(&self) -> TableStats {
        self.stats.get()
    }

    fn update_stats(&self, f: impl FnOnce(&mut TableStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }

    /// Applies a mutation of this table, logged at `position` (`None`: not logged).
    pub fn apply(&self, m: &Mutation, position: Option<ReplayPosition>) {
        // Writing another table's mutation here would corrupt both tables.
        assert_eq!(m.table, self.id, "mutation routed to the wrong table");
        let mut state = self.state.borrow_mut();
        // Only the active memtable changes: its delta is the total's too.
        let before = state.memtable.memory_bytes();
        state.memtable.apply(m);
        let after = state.memtable.memory_bytes();
        self.memory.change((before, before), (after, after));
        if let Some(p) = position {
            state.memtable_min_position = Some(state.memtable_min_position.map_or(p, |q| q.min(p)));
        }
    }

    /// Bytes held by the active memtable.
    pub fn active_memory_bytes(&self) -> usize {
        self.state.borrow().memtable.memory_bytes()
    }

    /// The oldest commitlog position whose write is not yet in an SSTable, if any.
    pub fn min_dirty_position(&self) -> Option<ReplayPosition> {
        let state = self.state.borrow();
        state
            .flushing
            .iter()
            .filter_map(|s| s.min_position)
            .chain(state.memtable_min_position)
            .min()
    }

    /// Number of live SSTables.
    pub fn sstable_count(&self) -> usize {
        self.state.borrow().sstables.len()
    }

    /// The live SSTables, oldest first.
    pub fn sstables(&self) -> Vec<Rc<Sstable>> {
        self.state.borrow().sstables.clone()
    }

    /// Seals the active memtable (if it holds anything) so that the next flush writes
    /// it. Returns whether it sealed.
    pub fn seal_memtable(&self) -> bool {
        let replay_floor = self
            .replay_floor_source
            .borrow()
            .as_ref()
            .and_then(|source| (source.0)());
        self.change_memtables(|state| {
            if state.memtable.is_empty() {
                return false;
            }
            let memtable = Rc::new(std::mem::take(&mut state.memtable));
            let min_position = state.memtable_min_position.take();
            state.flushing.push(SealedMemtable {
                memtable,
                min_position,
                replay_floor,
            });
            true
        })
    }

    /// Seals the active memtable and writes every sealed memtable to an SSTable, oldest
    /// first. Returns the SSTables written. A table without storage only seals.
    ///
    /// On an error the memtable that failed stays sealed and readable, its commitlog
    /// segments stay, and the next flush tries it again.
    pub async fn flush(&self) -> Result<Vec<SstableMeta>, StorageError> {
        self.seal_memtable();
        let Some(storage) = &self.storage else {
            return Ok(Vec::new());
        };
        let _permit = self
            .flush_lock
            .acquire_permit(1)
            .await
            .map_err(|_| StorageError::Closed)?;
        let mut written = Vec::new();
        loop {
            let next = {
                let state = self.state.borrow();
                if state.dropped {
                    return Ok(written);
                }
                state
                    .flushing
                    .first()
                    .map(|s| (Rc::clone(&s.memtable), s.replay_floor, state.truncations))
            };
            let Some((memtable, replay_floor, truncations)) = next else {
                return Ok(written);
            };
            match self.write_sstable(storage, &memtable, replay_floor).await {
                Ok((meta, sstable)) => {
                    let discarded = self.change_memtables(|state| {
                        state
                            .flushing
                            .retain(|s| !Rc::ptr_eq(&s.memtable, &memtable));
                        if !state.dropped && state.truncations == truncations {
                            state.sstables.push(Rc::new(sstable));
                            state.sstables_version += 1;
                            None
                        } else {
                            Some(sstable)
                        }
                    });
                    self.update_stats(|s| {
                        s.flushes += 1;
                        s.flushed_bytes += meta.stats.data_bytes;
                    });
                    match discarded {
                        None => written.push(meta),
                        Some(sstable) => {
                            // Truncated or dropped while it was written.
                            let _ = sstable.close().await;
                            delete_sstable_files(self.id, &storage.dir, &[meta.generation]).await?;
                        }
                    }
                }
                Err(error) => {
                    self.update_stats(|s| s.flush_failures += 1);
                    return Err(error);
                }
            }
        }
    }

    fn next_generation(&self, storage: &TableStorage) -> u64 {
        let mut state = self.state.borrow_mut();
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        Generation::new(sequence, storage.shard, storage.shard_count).0
    }

    async fn write_sstable(
        &self,
        storage: &TableStorage,
        memtable: &Memtable,
        replay_floor: Option<ReplayPosition>,
    ) -> Result<(SstableMeta, Sstable), StorageError> {
        let generation = self.next_generation(storage);
        let dir = &storage.dir;
        let error = |e: SstableError| StorageError::sstable(self.id, generation, &e);
        let options = self.settings.borrow().sstable.clone();
        let partitions = memtable.partition_count() as u64;
        let mut writer =
            crate::sstable::SstableWriter::create(dir, generation, options, partitions)
                .await
                .map_err(error)?;
        writer.set_replay_floor(replay_floor);
        for (key, partition) in memtable.iter() {
            writer.add_partition(key, partition).await.map_err(error)?;
        }
        let meta = writer.finish().await.map_err(error)?;
        let sstable = Sstable::open(dir, generation).await.map_err(error)?;
        Ok((meta, sstable))
    }

    /// Starts the compaction the strategy picks now, if any, and runs it to the end.
    /// Returns whether one ran.
    pub async fn compact_once(&self) -> Result<bool, StorageError> {
        self.compact_once_at(now_secs()).await
    }

    /// [`Self::compact_once`] with expiry and gc grace judged at `now_secs`.
    pub async fn compact_once_at(&self, now_secs: i32) -> Result<bool, StorageError> {
        let Some(job) = self.pick_job(false, now_secs) else {
            return Ok(false);
        };
        self.run_compaction(job, now_secs).await.map(|()| true)
    }

    /// An explicit major compaction: flushes, then merges every SSTable not already
    /// being compacted into one run. Returns whether there was anything to compact.
    pub async fn major_compaction(&self) -> Result<bool, StorageError> {
        self.major_compaction_at(now_secs()).await
    }

    /// [`Self::major_compaction`] with expiry and gc grace judged at `now_secs`.
    pub async fn major_compaction_at(&self, now_secs: i32) -> Result<bool, StorageError> {
        self.flush().await?;
        let Some(job) = self.pick_job(true, now_secs) else {
            return Ok(false);
        };
        self.run_compaction(job, now_secs).await.map(|()| true)
    }

    /// Bytes of SSTable data waiting for compaction: the inputs of the jobs running
    /// and of the job the strategy would pick next (the IO scheduler's controller
    /// raises compaction's shares with it).
    pub fn compaction_backlog_bytes(&self) -> u64 {
        let (compacting, free) = self.sstable_infos();
        let running: u64 = compacting.iter().map(|i| i.stats.data_bytes).sum();
        let now = now_secs();
        let settings = self.settings.borrow();
        let gc_before = now.saturating_sub(settings.gc_grace_seconds.max(0));
        let next: u64 = settings
            .compaction
            .pick(&free, &compacting, now, gc_before)
            .map_or(0, |job| {
                free.iter()
                    .filter(|i| job.inputs.contains(&i.generation))
                    .map(|i| i.stats.data_bytes)
                    .sum()
            });
        running + next
    }

    /// What the strategy knows of the live SSTables: those being compacted, and the rest.
    fn sstable_infos(&self) -> (Vec<SstableInfo>, Vec<SstableInfo>) {
        let state = self.state.borrow();
        state
            .sstables
            .iter()
            .map(|s| SstableInfo::of(s))
            .partition(|info| state.compacting.contains(&info.generation))
    }

    /// Picks a job among the SSTables not being compacted and marks its inputs.
    fn pick_job(&self, major: bool, now: i32) -> Option<CompactionJob> {
        self.storage.as_ref()?;
        let (compacting, free) = self.sstable_infos();
        let settings = self.settings.borrow();
        let job = if major {
            settings.compaction.major(&free)
        } else {
            let gc_before = now.saturating_sub(settings.gc_grace_seconds.max(0));
            settings.compaction.pick(&free, &compacting, now, gc_before)
        }?;
        self.state
            .borrow_mut()
            .compacting
            .extend(job.inputs.iter().copied());
        Some(job)
    }

    async fn run_compaction(&self, job: CompactionJob, now: i32) -> Result<(), StorageError> {
        let result = self.compact_inputs(&job, now).await;
        self.state
            .borrow_mut()
            .compacting
            .retain(|g| !job.inputs.contains(g));
        match &result {
            Ok((bytes_in, bytes_out)) => self.update_stats(|s| {
                s.compactions += 1;
                s.compacted_bytes_in += bytes_in;
                s.compacted_bytes_out += bytes_out;
            }),
            Err(error) => {
                self.update_stats(|s| s.compaction_failures += 1);
                tracing::error!(table = %self.id, %error, "compaction failed; its inputs stay");
            }
        }
        result.map(drop)
    }

    /// Merges the job's inputs into new SSTables and swaps them in: outputs written
    /// and opened, the transaction committed, inputs replaced by outputs in one step
    /// (no await), then the inputs' files deleted. A crash at any point leaves the
    /// inputs or the outputs (see `compaction::log`). Returns data bytes in and out.
    async fn compact_inputs(
        &self,
        job: &CompactionJob,
        now: i32,
    ) -> Result<(u64, u64), StorageError> {
        let storage = self.storage.as_ref().ok_or(StorageError::Closed)?;
        let error = |e: CompactionError| StorageError::compaction(self.id, &e);
        let (inputs, truncations) = {
            let state = self.state.borrow();
            let inputs: Vec<Rc<Sstable>> = state
                .sstables
                .iter()
                .filter(|s| job.inputs.contains(&s.generation()))
                .cloned()
                .collect();
            (inputs, state.truncations)
        };
        if inputs.len() != job.inputs.len() {
            // Truncated since it was picked.
            return Ok((0, 0));
        }
        let bytes_in = inputs.iter().map(|s| s.stats().data_bytes).sum();
        let settings = self.settings.borrow().clone();
        let output = OutputOptions {
            sstable: settings.sstable.clone(),
            level: job.output_level,
            max_output_bytes: job.max_output_bytes,
            replay_floor: inputs.iter().filter_map(|s| s.stats().replay_floor).max(),
        };
        // Judged per key when the merge reaches it, against the sources of that moment
        // (a flush finishing meanwhile adds an SSTable that may hold older data).
        // The SSTables outside the job, listed again only when the table's list changed.
        let others: RefCell<Option<(u64, Vec<Rc<Sstable>>)>> = RefCell::new(None);
        let purgeable = |key: &DecoratedKey| {
            let state = self.state.borrow();
            let mut others = others.borrow_mut();
            if others
                .as_ref()
                .is_none_or(|(v, _)| *v != state.sstables_version)
            {
                let list = state
                    .sstables
                    .iter()
                    .filter(|s| !job.inputs.contains(&s.generation()))
                    .cloned()
                    .collect();
                *others = Some((state.sstables_version, list));
            }
            let (_, list) = others.as_ref().expect("listed above");
            let versions = memtables(&state).filter_map(|m| m.get(key));
            compaction::max_purgeable_timestamp_of(key, list.iter().map(|s| &**s), versions)
        };
        let purge = PurgeOptions {
            now_secs: now,
            gc_grace_seconds: settings.gc_grace_seconds,
            max_purgeable_timestamp: &purgeable,
        };
        let mut txn = CompactionTxn::begin(&storage.dir, &job.inputs)
            .await
            .map_err(error)?;
        let mut next_generation = || self.next_generation(storage);
        let merged =
            compaction::compact(&inputs, &mut txn, &mut next_generation, &output, &purge).await;
        let outputs = match merged {
            Ok(outputs) => outputs,
            Err(e) => {
                let _ = txn.abort().await;
                return Err(error(e));
            }
        };
        let mut opened = Vec::with_capacity(outputs.len());
        for meta in &outputs {
            match Sstable::open(&storage.dir, meta.generation).await {
                Ok(sstable) => opened.push(Rc::new(sstable)),
                Err(e) => {
                    let _ = txn.abort().await;
                    return Err(StorageError::sstable(self.id, meta.generation, &e));
                }
            }
        }
        let committed = txn.commit().await.map_err(error)?;
        let discarded = {
            let mut state = self.state.borrow_mut();
            if state.dropped || state.truncations != truncations {
                Some(opened)
            } else {
                state
                    .sstables
                    .retain(|s| !job.inputs.contains(&s.generation()));
                state.sstables.extend(opened);
                state.sstables_version += 1;
                None
            }
        };
        // Inputs' files are shrunk in steps before they are unlinked (one unlink of
        // hundreds of MiB stalls reads for tens of ms), once no read holds them:
        // a read still holding one would find its files cut short.
        let held: Vec<std::rc::Weak<Sstable>> = inputs.iter().map(Rc::downgrade).collect();
        drop(inputs);
        if inputs_released(&held).await {
            committed.finish_gradually().await.map_err(error)?;
        } else {
            committed.finish().await.map_err(error)?;
        }
        if let Some(outputs) = discarded {
            // Truncated or dropped while it ran: the outputs hold deleted data.
            let generations: Vec<u64> = outputs.iter().map(|s| s.generation()).collect();
            drop(outputs);
            delete_sstable_files(self.id, &storage.dir, &generations).await?;
        }
        let bytes_out = outputs.iter().map(|m| m.stats.data_bytes).sum();
        Ok((bytes_in, bytes_out))
    }

    /// SSTables not in `seen` that may hold data of `key` in `slice`.
    fn unread_sstables_for(
        &self,
        key: &DecoratedKey,
        slice: &SliceQuery,
        seen: &HashSet<u64>,
    ) -> Vec<Rc<Sstable>> {
        self.state
            .borrow()
            .sstables
            .iter()
            .filter(|s| !seen.contains(&s.generation()) && may_hold(s, key, slice))
            .cloned()
            .collect()
    }

    /// Reads one partition's live data, or `None` if it has none in the slice.
    pub async fn read_partition(
        &self,
        key: &DecoratedKey,
        cmd: &SliceQuery,
        now_secs: i32,
    ) -> Result<Option<PartitionResult>, StorageError> {
        let mut seen = HashSet::new();
        let mut from_disk: Vec<Partition> = Vec::new();
        loop {
            let unread = self.unread_sstables_for(key, cmd, &seen);
            if unread.is_empty() {
                let state = self.state.borrow();
                let versions: Vec<&Partition> = memtables(&state)
                    .filter_map(|m| m.get(key))
                    .chain(from_disk.iter())
                    .collect();
                if versions.is_empty() {
                    return Ok(None);
                }
                return Ok(read_partition(&versions, key, cmd, now_secs));
            }
            for sstable in unread {
                seen.insert(sstable.generation());
                self.update_stats(|s| s.sstable_reads += 1);
                // Boxed: the SSTable read's state would otherwise sit in every
                // read's future, memtable-only ones included.
                match Box::pin(sstable.read_partition_slice(key, cmd)).await {
                    Ok(Some(partition)) => from_disk.push(partition),
                    Ok(None) => {}
                    Err(e) => return Err(self.read_error(&sstable, &e)),
                }
            }
        }
    }

    fn read_error(&self, sstable: &Sstable, error: &SstableError) -> StorageError {
        self.update_stats(|s| s.sstable_read_errors += 1);
        tracing::error!(table = %self.id, generation = sstable.generation(), %error, "sstable read failed");
        StorageError::sstable(self.id, sstable.generation(), error)
    }

    /// Reads the live partitions of `range` in ring order, at most `partition_limit` of
    /// them and at most `cmd.row_limit` rows in all. Partitions with no live data in the
    /// slice are skipped and count toward neither limit.
    ///
    /// SSTables are read in batches of partitions, so memory stays bounded by the
    /// batches and the answer, whatever the table's size.
    pub async fn scan(
        &self,
        range: &PartitionRange,
        cmd: &SliceQuery,
        partition_limit: usize,
        now_secs: i32,
    ) -> Result<Vec<PartitionResult>, StorageError> {
        let mut remaining = cmd.clone();
        let mut out = Vec::new();
        let mut position = range.start.clone();
        let mut cursors: Vec<ScanCursor> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::new();
        loop {
            if out.len() >= partition_limit || remaining.row_limit == 0 {
                return Ok(out);
            }
            // Every SSTable that appeared since the last step starts at the position.
            for sstable in self.state.borrow().sstables.iter() {
                if seen.insert(sstable.generation()) {
                    cursors.push(ScanCursor::new(Rc::clone(sstable), position.clone()));
                }
            }
            let mut awaited = false;
            for cursor in cursors.iter_mut().filter(|c| c.needs_fill()) {
                cursor.fill(&range.end).await.map_err(|e| {
                    self.update_stats(|s| s.sstable_read_errors += 1);
                    StorageError::sstable(self.id, cursor.sstable.generation(), &e)
                })?;
                awaited = true;
            }
            if awaited {
                // New SSTables may have appeared meanwhile: register them first.
                continue;
            }
            // Up to the frontier every SSTable's partitions are buffered.
            let frontier: Option<DecoratedKey> = cursors
                .iter()
                .filter(|c| !c.exhausted)
                .filter_map(|c| c.buffered.back().map(|(k, _)| k))
                .min()
                .cloned();
            let window = PartitionRange {
                start: position.clone(),
                end: match &frontier {
                    Some(key) => Bound::Included(RingPosition::key(key)),
                    None => range.end.clone(),
                },
            };
            {
                let state = self.state.borrow();
                let mut sources: Vec<SortedSource<'_, DecoratedKey, Partition>> =
                    memtables(&state).map(|m| m.partitions(&window)).collect();
                for cursor in &cursors {
                    let window = &window;
                    sources.push(Box::new(
                        cursor
                            .buffered
                            .iter()
                            .take_while(move |(k, _)| window.before_end(k))
                            .map(|(k, p)| (k, p)),
                    ));
                }
                for (key, versions) in MergeByKey::new(sources, false) {
                    if out.len() >= partition_limit || remaining.row_limit == 0 {
                        break;
                    }
                    if let Some(result) = read_partition(&versions, key, &remaining, now_secs) {
                        let counted = result.counted_rows(&remaining);
                        remaining.row_limit = remaining.row_limit.saturating_sub(counted);
                        out.push(result);
                    }
                }
            }
            let Some(frontier) = frontier else {
                return Ok(out);
            };
            for cursor in &mut cursors {
                while cursor.buffered.front().is_some_and(|(k, _)| *k <= frontier) {
                    cursor.buffered.pop_front();
                }
            }
            position = Bound::Excluded(RingPosition::key(&frontier));
        }
    }

    /// Drops all data: memtables at once, SSTables from the read path at once and then
    /// from disk (each SSTable's TOC first, so a crash midway leaves only incomplete
    /// SSTables, which the next start removes). A flush running meanwhile discards its
    /// output.
    pub async fn truncate(&self) -> Result<(), StorageError> {
        let sstables = self.change_memtables(|state| {
            state.memtable.clear();
            state.memtable_min_position = None;
            state.flushing.clear();
            state.truncations += 1;
            state.sstables_version += 1;
            std::mem::take(&mut state.sstables)
        });
        self.delete_sstables(sstables).await
    }

    /// Drops the memtables' contents, keeping the SSTables: commitlog replay of a
    /// truncation, whose SSTables were deleted before it was logged.
    pub fn clear_memtables(&self) {
        self.change_memtables(|state| {
            state.memtable.clear();
            state.memtable_min_position = None;
            state.flushing.clear();
        });
    }

    /// Marks the table dropped and deletes its data as [`Self::truncate`] does.
    pub async fn drop_data(&self) -> Result<(), StorageError> {
        self.state.borrow_mut().dropped = true;
        self.truncate().await
    }

    async fn delete_sstables(&self, sstables: Vec<Rc<Sstable>>) -> Result<(), StorageError> {
        let Some(storage) = &self.storage else {
            return Ok(());
        };
        let generations: Vec<u64> = sstables.iter().map(|s| s.generation()).collect();
        delete_sstable_files(self.id, &storage.dir, &generations).await
    }

    /// Approximate memory held by the active and sealed memtables, bytes.
    pub fn memory_bytes(&self) -> usize {
        memtables(&self.state.borrow())
            .map(Memtable::memory_bytes)
            .sum()
    }

    /// Partitions held by the active and sealed memtables (a partition present in several
    /// is counted in each).
    pub fn partition_count(&self) -> usize {
        memtables(&self.state.borrow())
            .map(Memtable::partition_count)
            .sum()
    }
}

/// The wall clock in seconds, as expiry and gc grace count it.
fn now_secs() -> i32 {
    i32::try_from(scheduler::clock::now_micros() / 1_000_000).unwrap_or(i32::MAX)
}

/// The active memtable and the sealed ones.
fn memtables(state: &State) -> impl Iterator<Item = &Memtable> {
    std::iter::once(&state.memtable).chain(state.flushing.iter().map(|s| s.memtable.as_ref()))
}

/// Whether `sstable` may hold data of `key` in `slice`: its token range, its
/// clustering statistics and its bloom filter say so.
fn may_hold(sstable: &Sstable, key: &DecoratedKey, slice: &SliceQuery) -> bool {
    let stats = sstable.stats();
    let in_range = match (stats.min_token, stats.max_token) {
        (Some(min), Some(max)) => (min..=max).contains(&key.token),
        _ => false,
    };
    in_range && sstable.may_intersect(slice) && sstable.may_contain(key)
}

/// One SSTable's part of a scan: the partitions read ahead of the merge.
struct ScanCursor {
    sstable: Rc<Sstable>,
    buffered: VecDeque<(DecoratedKey, Partition)>,
    /// Where the next batch starts.
    next: Bound<RingPosition>,
    /// No partitions left beyond `buffered`.
    exhausted: bool,
}

impl ScanCursor {
    fn new(sstable: Rc<Sstable>, start: Bound<RingPosition>) -> Self {
        Self {
            sstable,
            buffered: VecDeque::new(),
            next: start,
            exhausted: false,
        }
    }

    fn needs_fill(&self) -> bool {
        !self.exhausted && self.buffered.is_empty()
    }

    async fn fill(&mut self, end: &Bound<RingPosition>) -> Result<(), SstableError> {
        let range = PartitionRange {
            start: self.next.clone(),
            end: end.clone(),
        };
        let batch = self
            .sstable
            .scan_limited(&range, SCAN_BATCH_PARTITIONS)
            .await?;
        self.exhausted = batch.len() < SCAN_BATCH_PARTITIONS;
        if let Some((last, _)) = batch.last() {
            self.next = Bound::Excluded(RingPosition::key(last));
        }
        self.buffered.extend(batch);
        Ok(())
    }
}

/// `tsr-<generation>-<component>` → its parts.
fn parse_component_name(name: &str) -> Option<(u64, Component)> {
    let rest = name.strip_prefix("tsr-")?;
    let (generation, component) = rest.split_once('-')?;
    let generation = generation.parse().ok()?;
    let component = if component == Component::Toc.name() {
        Component::Toc
    } else {
        Component::LISTED
            .into_iter()
            .find(|c| c.name() == component)?
    };
    Some((generation, component))
}

/// Deletes SSTables' files (every TOC first, durably, then the rest).
async fn delete_sstable_files(
    table: TableId,
    dir: &Path,
    generations: &[u64],
) -> Result<(), StorageError> {
    compaction::delete_sstables(dir, generations)
        .await
        .map(drop)
        .map_err(|e| StorageError::compaction(table, &e))
}

/// Moves an SSTable's files to `dir/quarantine/`.
async fn quarantine(dir: &Path, files: &[PathBuf]) -> std::io::Result<()> {
    let target = dir.join("quarantine");
    scheduler::io::create_dir_all(&target).await?;
    for file in files {
        if let Some(name) = file.file_name() {
            scheduler::io::rename(file, &target.join(name)).await?;
        }
    }
    scheduler::io::sync_directory(dir).await
}

/// Waits up to a second for every SSTable in `held` to be dropped (reads in flight
/// finish); whether they all were.
async fn inputs_released(held: &[std::rc::Weak<Sstable>]) -> bool {
    for _ in 0..100 {
        if held.iter().all(|w| w.strong_count() == 0) {
            return true;
        }
        scheduler::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use bytes::Bytes;

    use super::*;
    use crate::model::{Cell, ClusteringBound, ClusteringRange, Expiry, Row, Tombstone};

    const T: TableId = uuid::Uuid::from_u128(1);

    fn key(token: i64) -> DecoratedKey {
        DecoratedKey::new(token, format!("k{token}"))
    }

    fn m(token: i64) -> Mutation {
        Mutation::new(T, key(token))
    }

    fn clusterings(table: &Table, token: i64, cmd: &SliceQuery, now: i32) -> Vec<Bytes> {
        read(table, &key(token), cmd, now)
            .map(|p| p.rows.into_iter().map(|(k, _)| k).collect())
            .unwrap_or_default()
    }

    fn table_with(ms: &[Mutation]) -> Table {
        let table = Table::new(T);
        for m in ms {
            table.apply(m, None);
        }
        table
    }

    /// A memory-only table never awaits IO, so its reads complete in one poll.
    fn read(
        table: &Table,
        key: &DecoratedKey,
        cmd: &SliceQuery,
        now: i32,
    ) -> Option<PartitionResult> {
        futures_lite::future::block_on(table.read_partition(key, cmd, now)).expect("memory read")
    }

    fn scan(
        table: &Table,
        range: &PartitionRange,
        cmd: &SliceQuery,
        limit: usize,
        now: i32,
    ) -> Vec<PartitionResult> {
        futures_lite::future::block_on(table.scan(range, cmd, limit, now)).expect("memory scan")
    }

    #[test]
    fn row_is_live_by_marker_or_by_cell() {
        let table = table_with(&[
            m(1).with_row("a", Row::with_marker(1, None)),
            m(1).with_row("b", Row::new().cell(1, Cell::live(1, "v"))),
            m(1).with_row("c", Row::new().cell(1, Cell::dead(1, 0))),
        ]);
        assert_eq!(
            clusterings(&table, 1, &SliceQuery::full(), 0),
            vec!["a", "b"]
        );
    }

    #[test]
    fn partition_deletion_shadows_older_and_equal_only() {
        let table = table_with(&[
            m(1).with_row("a", Row::with_marker(5, None))
                .with_static_row(Row::new().cell(9, Cell::live(5, "s"))),
            m(1).with_row("b", Row::with_marker(6, None)),
            Mutation::partition_delete(T, key(1), Tombstone::new(5, 0)),
        ]);
        let result = read(&table, &key(1), &SliceQuery::full(), 0).expect("b is live");
        assert!(result.static_row.is_none());
        assert_eq!(result.rows.len(), 1);
        assert_eq!(result.rows[0].0, "b");
    }

    #[test]
    fn row_deletion_shadows_marker_and_cells() {
        let table = table_with(&[
            m(1).with_row(
                "a",
                Row::with_marker(1, None)
                    .cell(1, Cell::live(1, "x"))
                    .cell(2, Cell::live(3, "y")),
            ),
            m(1).with_row("a", Row::deleted(Tombstone::new(2, 0))),
        ]);
        let result = read(&table, &key(1), &SliceQuery::full(), 0).expect("cell 2 survives");
        let row = &result.rows[0].1;
        assert!(row.marker.is_none());
        assert!(row.cell(1).is_none());
        assert_eq!(row.cell(2).map(|c| c.value.clone()), Some(Bytes::from("y")));
    }

    #[test]
    fn range_tombstone_shadows_rows_in_prefix_range() {
        let rows = ["a\x01", "b\x01", "b\x02", "c\x01"];
        let mut ms: Vec<Mutation> = rows
            .iter()
            .map(|r| m(1).with_row(*r, Row::with_marker(1, None)))
            .collect();
        // DELETE WHERE ck1 > 'a' AND ck1 <= 'b'.
        let range = ClusteringRange::new(
            Some(ClusteringBound::exclusive("a")),
            Some(ClusteringBound::inclusive("b")),
        );
        ms.push(m(1).with_range_tombstone(range, Tombstone::new(1, 0)));
        let table = table_with(&ms);
        assert_eq!(
            clusterings(&table, 1, &SliceQuery::full(), 0),
            vec!["a\x01", "c\x01"]
        );
    }

    #[test]
    fn complex_deletion_shadows_older_elements() {
        let table = table_with(&[
            m(1).with_row(
                "a",
                Row::new()
                    .element(3, "x", Cell::live(1, "1"))
                    .element(3, "y", Cell::live(1, "2")),
            ),
            // Overwrite of the collection: delete at ts-1, then write new elements at ts.
            m(1).with_row(
                "a",
                Row::new()
                    .complex_deletion(3, Tombstone::new(1, 0))
                    .element(3, "z", Cell::live(2, "3")),
            ),
        ]);
        let result = read(&table, &key(1), &SliceQuery::full(), 0).expect("live");
        let elements: Vec<_> = result.rows[0]
            .1
            .elements(3)
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(elements, vec![Bytes::from("z")]);
    }

    #[test]
    fn expired_cell_is_a_tombstone_that_shadows_older_values() {
        let table = table_with(&[
            m(1).with_row("a", Row::new().cell(1, Cell::live(1, "old"))),
            m(1).with_row(
                "a",
                Row::new().cell(1, Cell::expiring(2, "new", Expiry::new(10, 100))),
            ),
        ]);
        assert_eq!(clusterings(&table, 1, &SliceQuery::full(), 109), vec!["a"]);
        assert!(read(&table, &key(1), &SliceQuery::full(), 110).is_none());
    }

    #[test]
    fn equal_timestamp_and_expiry_prefers_the_smaller_ttl() {
        let written_at_10 = Expiry {
            ttl: 5,
            expires_at: 15,
        };
        let written_at_12 = Expiry {
            ttl: 3,
            expires_at: 15,
        };
        for order in [
            [written_at_10, written_at_12],
            [written_at_12, written_at_10],
        ] {
            let ms: Vec<Mutation> = order
                .iter()
                .map(|e| m(1).with_row("a", Row::new().cell(1, Cell::expiring(1, "v", *e))))
                .collect();
            let table = table_with(&ms);
            let result = read(&table, &key(1), &SliceQuery::full(), 0).expect("live");
            assert_eq!(
                result.rows[0].1.cell(1).and_then(|c| c.expiry),
                Some(written_at_12)
            );
        }
    }

    #[test]
    fn expired_marker_leaves_row_to_its_cells() {
        let table = table_with(&[m(1).with_row(
            "a",
            Row::with_marker(1, Some(Expiry::new(10, 0))).cell(1, Cell::live(2, "v")),
        )]);
        let row = read(&table, &key(1), &SliceQuery::full(), 20)
            .expect("cell is live")
            .rows[0]
            .1
            .clone();
        assert!(row.marker.is_none());
        assert!(row.cell(1).is_some());
    }

    #[test]
    fn static_only_partition_is_returned_and_counted_once() {
        let table = table_with(&[
            m(1).with_static_row(Row::new().cell(9, Cell::live(1, "s"))),
            m(2).with_row("a", Row::with_marker(1, None)),
        ]);
        let result = read(&table, &key(1), &SliceQuery::full(), 0).expect("static is live");
        assert!(result.rows.is_empty() && result.static_row.is_some());
        let cmd = SliceQuery {
            row_limit: 1,
            ..SliceQuery::full()
        };
        let scanned = scan(&table, &PartitionRange::full(), &cmd, 10, 0);
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].key, key(1));
    }

    #[test]
    fn reversed_multi_range_slice_with_limit() {
        let ms: Vec<Mutation> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|r| m(1).with_row(*r, Row::with_marker(1, None)))
            .collect();
        let table = table_with(&ms);
        let cmd = SliceQuery {
            ranges: vec![
                ClusteringRange::prefix("a"),
                ClusteringRange::new(Some(ClusteringBound::inclusive("c")), None),
            ],
            reversed: true,
            row_limit: 3,
            columns: None,
        };
        assert_eq!(clusterings(&table, 1, &cmd, 0), vec!["e", "d", "c"]);
        let forward = SliceQuery {
            reversed: false,
            ..cmd
        };
        assert_eq!(clusterings(&table, 1, &forward, 0), vec!["a", "c", "d"]);
    }

    #[test]
    fn column_selection_trims_cells_not_liveness() {
        let table = table_with(&[m(1).with_row(
            "a",
            Row::new()
                .cell(1, Cell::live(1, "x"))
                .cell(2, Cell::live(1, "y")),
        )]);
        let cmd = SliceQuery {
            columns: Some(vec![2]),
            ..SliceQuery::full()
        };
        let row = read(&table, &key(1), &cmd, 0).expect("live").rows[0]
            .1
            .clone();
        assert_eq!(row.cells.len(), 1);
        let cmd = SliceQuery {
            columns: Some(vec![3]),
            ..SliceQuery::full()
        };
        assert!(read(&table, &key(1), &cmd, 0).expect("still live").rows[0]
            .1
            .cells
            .is_empty());
    }

    #[test]
    fn scan_honours_token_bounds_limits_and_skips_dead_partitions() {
        let mut ms: Vec<Mutation> = (0..6)
            .map(|t| m(t).with_row("a", Row::with_marker(1, None)))
            .collect();
        ms.push(Mutation::partition_delete(T, key(2), Tombstone::new(1, 0)));
        let table = table_with(&ms);
        let range = PartitionRange::tokens(Bound::Excluded(0), Bound::Unbounded);
        let tokens =
            |ps: Vec<PartitionResult>| ps.into_iter().map(|p| p.key.token).collect::<Vec<_>>();
        assert_eq!(
            tokens(scan(&table, &range, &SliceQuery::full(), 3, 0)),
            vec![1, 3, 4]
        );
        let cmd = SliceQuery {
            row_limit: 2,
            ..SliceQuery::full()
        };
        assert_eq!(tokens(scan(&table, &range, &cmd, 10, 0)), vec![1, 3]);
    }

    #[test]
    fn sealed_memtables_are_merged_until_truncated() {
        let table = table_with(&[m(1).with_row("a", Row::new().cell(1, Cell::live(2, "sealed")))]);
        assert!(table.seal_memtable());
        assert!(!table.seal_memtable(), "nothing to seal");
        table.apply(
            &m(1).with_row("a", Row::new().cell(1, Cell::live(1, "older"))),
            None,
        );
        table.apply(&m(1).with_row("b", Row::with_marker(1, None)), None);
        let result = read(&table, &key(1), &SliceQuery::full(), 0).expect("live");
        assert_eq!(
            result.rows[0].1.cell(1).map(|c| c.value.clone()),
            Some(Bytes::from("sealed"))
        );
        assert_eq!(result.rows.len(), 2);
        assert_eq!(
            scan(&table, &PartitionRange::full(), &SliceQuery::full(), 10, 0).len(),
            1
        );
        futures_lite::future::block_on(table.truncate()).expect("memory truncate");
        assert_eq!(table.memory_bytes(), 0);
        assert_eq!(table.partition_count(), 0);
    }

    #[test]
    fn generations_name_their_shard_and_shard_count() {
        let g = Generation::new(77, 3, 8);
        assert_eq!((g.sequence(), g.shard(), g.shard_count()), (77, 3, 8));
        let g = Generation::new(1, 1023, MAX_SHARDS);
        assert_eq!(
            (g.sequence(), g.shard(), g.shard_count()),
            (1, 1023, MAX_SHARDS)
        );
        assert!(Generation::new(2, 0, 1) > Generation::new(1, 5, 8));
        assert_eq!(
            parse_component_name("tsr-42-Data.db"),
            Some((42, Component::Data))
        );
        assert_eq!(
            parse_component_name("tsr-42-TOC.txt"),
            Some((42, Component::Toc))
        );
        assert_eq!(parse_component_name("tsr-42-TOC.txt.tmp"), None);
        assert_eq!(parse_component_name("other"), None);
    }
}
