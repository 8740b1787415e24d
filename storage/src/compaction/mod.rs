//! Compaction: merging SSTables into new ones that hold only what still matters.
//!
//! This module owns the three parts of compaction; the table that runs them (when to
//! pick, how many jobs at once, swapping its SSTable list) is the caller's:
//!
//! - [`strategy`]: which SSTables to merge next ([`CompactionStrategy::pick`]), a pure
//!   function of their statistics, parsed from the table's `compaction` options.
//! - [`compact`]: the merge itself, streaming: each input is read in batches of
//!   [`SCAN_BATCH_PARTITIONS`] partitions, so memory is bounded by the inputs' count
//!   times a batch, never a whole SSTable. Equal keys are merged with
//!   [`Partition::merge`], compacted with [`Partition::compact`] (shadowed data dropped,
//!   expired cells turned to tombstones, old tombstones purged), partitions left empty
//!   are dropped, and outputs are split once one holds the job's maximum bytes.
//! - [`log`]: the compaction log that makes the swap atomic across a crash
//!   ([`CompactionTxn`], [`recover`]).
//!
//! A caller runs a job as:
//!
//! 1. `let mut txn = CompactionTxn::begin(dir, &job.inputs).await?;`
//! 2. `let outputs = compact(&inputs, &mut txn, &mut next_generation, &output, &purge).await?;`
//!    (on error: `txn.abort().await`)
//! 3. `let committed = txn.commit().await?;`
//! 4. open the outputs, swap them for the inputs in the served list;
//! 5. `committed.finish().await?` deletes the inputs and the log.

pub mod log;
pub mod strategy;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::ops::Bound;
use std::path::PathBuf;
use std::rc::Rc;

pub use log::{
    delete_sstables, recover, recover_owned, CommittedCompaction, CompactionTxn, RecoveryReport,
};
pub use strategy::{CompactionJob, CompactionStrategy, JobKind, SstableInfo};

use crate::model::{DecoratedKey, Partition, PartitionRange, RingPosition};
use crate::sstable::{Sstable, SstableError, SstableMeta, SstableOptions, SstableWriter};

/// Partitions read from each input per scan: the merge holds at most this many
/// partitions per input at a time.
pub const SCAN_BATCH_PARTITIONS: usize = 32;

/// Why a compaction failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactionError {
    /// Reading an input or writing an output failed.
    #[error(transparent)]
    Sstable(#[from] SstableError),
    /// A file operation on the compaction log or a deletion failed.
    #[error("compaction io: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A compaction log that cannot be trusted (damaged before its last record, or
    /// records out of order). Recovery leaves everything in place.
    #[error("compaction log {path} is corrupt: {reason}")]
    CorruptLog { path: PathBuf, reason: String },
    /// A log for the same compaction id exists: recovery has not run.
    #[error("compaction log {path} already exists")]
    LogExists { path: PathBuf },
    /// A compaction option the strategy cannot use.
    #[error("invalid compaction option {option} = {value:?}")]
    InvalidOption { option: String, value: String },
    /// An output generation that is already in use (the generation allocator must
    /// hand out fresh ones).
    #[error("compaction output generation {generation} already exists in {dir}")]
    OutputExists { dir: PathBuf, generation: u64 },
    /// A compaction of no SSTables.
    #[error("a compaction needs at least one input")]
    NoInputs,
}

/// Where and how outputs are written.
#[derive(Debug, Clone)]
pub struct OutputOptions {
    /// Tuning of each output SSTable.
    pub sstable: SstableOptions,
    /// Level recorded in the outputs.
    pub level: u32,
    /// Start a new output once one holds this many data bytes (`u64::MAX`: one output).
    pub max_output_bytes: u64,
    /// Commitlog replay floor recorded in the outputs: the highest of the inputs'
    /// (the outputs hold all their data).
    pub replay_floor: Option<crate::commitlog::ReplayPosition>,
}

/// When tombstones may be purged.
pub struct PurgeOptions<'a> {
    /// The compaction's notion of now, seconds (expiry is judged against it).
    pub now_secs: i32,
    /// The table's gc grace: tombstones older than `now - gc_grace_seconds` may go.
    pub gc_grace_seconds: i32,
    /// For a partition key, the smallest timestamp any source outside the compaction
    /// (other SSTables that may hold the key, memtables) holds for it; `i64::MAX` when
    /// none. Only tombstones below it are purged.
    pub max_purgeable_timestamp: &'a dyn Fn(&DecoratedKey) -> i64,
}

impl std::fmt::Debug for PurgeOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurgeOptions")
            .field("now_secs", &self.now_secs)
            .field("gc_grace_seconds", &self.gc_grace_seconds)
            .finish_non_exhaustive()
    }
}

impl PurgeOptions<'_> {
    fn gc_before_secs(&self) -> i32 {
        self.now_secs.saturating_sub(self.gc_grace_seconds.max(0))
    }
}

/// The max purgeable timestamp of `key` for a compaction: the smallest timestamp that
/// the SSTables outside it (`other_sstables`: every served SSTable not in the job) and
/// the memtables' versions of the partition (`memtable_versions`) may hold for it;
/// `i64::MAX` when none may hold the key. SSTables are judged by token range, bloom
/// filter and their minimum timestamp, so the bound is conservative (never too high).
pub fn max_purgeable_timestamp(
    key: &DecoratedKey,
    other_sstables: &[Rc<Sstable>],
    memtable_versions: &[&Partition],
) -> i64 {
    let in_sstables = other_sstables
        .iter()
        .filter(|s| {
            let stats = s.stats();
            let in_range = stats.min_token.is_some_and(|t| t <= key.token)
                && stats.max_token.is_some_and(|t| key.token <= t);
            in_range && s.may_contain(key)
        })
        .filter_map(|s| s.stats().min_timestamp);
    let in_memtables = memtable_versions.iter().filter_map(|p| p.min_timestamp());
    in_sstables.chain(in_memtables).min().unwrap_or(i64::MAX)
}

/// One input being read in batches.
struct InputCursor {
    sstable: Rc<Sstable>,
    batch: VecDeque<(DecoratedKey, Partition)>,
    /// The last key read: the next batch starts after it.
    last_key: Option<DecoratedKey>,
    exhausted: bool,
}

impl InputCursor {
    /// Reads the next batch if the current one is used up.
    async fn fill(&mut self) -> Result<(), SstableError> {
        if !self.batch.is_empty() || self.exhausted {
            return Ok(());
        }
        let start = match &self.last_key {
            None => Bound::Unbounded,
            Some(key) => Bound::Excluded(RingPosition::key(key)),
        };
        let range = PartitionRange {
            start,
            end: Bound::Unbounded,
        };
        let batch = self
            .sstable
            .scan_limited(&range, SCAN_BATCH_PARTITIONS)
            .await?;
        self.exhausted = batch.len() < SCAN_BATCH_PARTITIONS;
        // Keys arrive in ring order (the index is checksummed and was written in order);
        // were they not, the output writer would refuse them (`OutOfOrder`).
        if let Some((key, _)) = batch.last() {
            self.last_key = Some(key.clone());
        }
        self.batch.extend(batch);
        Ok(())
    }
}

/// The output SSTable being written and what has been finished.
struct Outputs<'a> {
    txn: &'a mut CompactionTxn,
    next_generation: &'a mut dyn FnMut() -> u64,
    options: &'a OutputOptions,
    current: Option<SstableWriter>,
    last_token: Option<i64>,
    finished: Vec<SstableMeta>,
}

impl Outputs<'_> {
    async fn add(
        &mut self,
        key: &DecoratedKey,
        partition: &Partition,
    ) -> Result<(), CompactionError> {
        // Split only between tokens, so the outputs' token ranges are disjoint.
        let full = self.current.as_ref().is_some_and(|w| {
            w.data_bytes_estimate() >= self.options.max_output_bytes
                && self.last_token != Some(key.token)
        });
        if full {
            self.finish_current().await?;
        }
        if self.current.is_none() {
            let generation = (self.next_generation)();
            self.txn.add_output(generation).await?;
            let mut writer =
                SstableWriter::create(self.txn.dir(), generation, self.options.sstable.clone())
                    .await?;
            writer.set_level(self.options.level);
            writer.set_replay_floor(self.options.replay_floor);
            self.current = Some(writer);
        }
        let writer = self.current.as_mut().expect("an output is open");
        writer.add_partition(key, partition).await?;
        self.last_token = Some(key.token);
        Ok(())
    }

    async fn finish_current(&mut self) -> Result<(), CompactionError> {
        if let Some(writer) = self.current.take() {
            self.finished.push(writer.finish().await?);
        }
        Ok(())
    }
}

/// Merges `inputs` into new SSTables in the transaction's directory, recording each
/// output in `txn` before creating it; generations come from `next_generation`.
/// Returns the finished outputs (none if everything was purged). The caller commits
/// or aborts `txn` afterwards.
pub async fn compact(
    inputs: &[Rc<Sstable>],
    txn: &mut CompactionTxn,
    next_generation: &mut dyn FnMut() -> u64,
    output: &OutputOptions,
    purge: &PurgeOptions<'_>,
) -> Result<Vec<SstableMeta>, CompactionError> {
    if inputs.is_empty() {
        return Err(CompactionError::NoInputs);
    }
    let mut cursors: Vec<InputCursor> = inputs
        .iter()
        .map(|sstable| InputCursor {
            sstable: Rc::clone(sstable),
            batch: VecDeque::new(),
            last_key: None,
            exhausted: false,
        })
        .collect();
    let mut outputs = Outputs {
        txn,
        next_generation,
        options: output,
        current: None,
        last_token: None,
        finished: Vec::new(),
    };
    let gc_before = purge.gc_before_secs();
    let (mut read, mut dropped) = (0u64, 0u64);
    while let Some((key, mut partition)) = next_merged(&mut cursors, &mut read).await? {
        partition.compact(
            purge.now_secs,
            gc_before,
            (purge.max_purgeable_timestamp)(&key),
        );
        if partition.is_empty() {
            dropped += 1;
            continue;
        }
        outputs.add(&key, &partition).await?;
    }
    outputs.finish_current().await?;
    let finished = outputs.finished;
    tracing::debug!(
        inputs = inputs.len(),
        partitions_read = read,
        partitions_dropped = dropped,
        outputs = finished.len(),
        "compaction merged"
    );
    Ok(finished)
}

/// The smallest key among the inputs with every input's version of it merged.
async fn next_merged(
    cursors: &mut [InputCursor],
    read: &mut u64,
) -> Result<Option<(DecoratedKey, Partition)>, CompactionError> {
    for cursor in cursors.iter_mut() {
        cursor.fill().await?;
    }
    let Some(key) = cursors
        .iter()
        .filter_map(|c| c.batch.front().map(|(k, _)| k))
        .min()
        .cloned()
    else {
        return Ok(None);
    };
    let mut merged: Option<Partition> = None;
    for cursor in cursors.iter_mut() {
        if cursor.batch.front().is_some_and(|(k, _)| *k == key) {
            let (_, partition) = cursor.batch.pop_front().expect("front exists");
            *read += 1;
            match &mut merged {
                None => merged = Some(partition),
                Some(m) => {
                    m.merge(&partition);
                }
            }
        }
    }
    Ok(merged.map(|p| (key, p)))
}
