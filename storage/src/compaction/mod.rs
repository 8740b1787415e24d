//! Compaction: merging SSTables into new ones that hold only what still matters.
//!
//! This module owns the three parts of compaction; the table that runs them (when to
//! pick, how many jobs at once, swapping its SSTable list) is the caller's:
//!
//! - [`strategy`]: which SSTables to merge next ([`CompactionStrategy::pick`]), a pure
//!   function of their statistics, parsed from the table's `compaction` options.
//! - [`compact`]: the merge itself, streaming: each input is read front to back once by
//!   an [`SstableScanner`] (large sequential reads, bypassing the chunk cache), so
//!   memory is bounded by [`READ_AHEAD_BUDGET_BYTES`] plus one partition per input,
//!   never a whole SSTable. The inputs' next partitions sit in a binary heap by key.
//!   A partition only one input holds and that compacting could not change (plain: no
//!   tombstone, no TTL, no empty row; one row block) is copied as it lies, with no
//!   decoding: most of a typical compaction. Otherwise equal keys are merged with
//!   [`Partition::merge`], compacted with [`Partition::compact`] (shadowed data dropped,
//!   expired cells turned to tombstones, old tombstones purged), partitions left empty
//!   are dropped. Outputs are split once one holds the job's maximum bytes.
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

use std::path::PathBuf;
use std::rc::Rc;

pub use log::{
    delete_sstables, recover, recover_owned, CommittedCompaction, CompactionTxn, RecoveryReport,
};
pub use strategy::{CompactionJob, CompactionStrategy, JobKind, SstableInfo};

use crate::model::{DecoratedKey, Partition};
use crate::sstable::{
    ScannedPartition, Sstable, SstableError, SstableMeta, SstableOptions, SstableScanner,
    SstableWriter,
};

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
    max_purgeable_timestamp_of(
        key,
        other_sstables.iter().map(|s| &**s),
        memtable_versions.iter().copied(),
    )
}

/// [`max_purgeable_timestamp`] over iterators, so a caller filtering its sources per
/// key (compaction asks once per partition) builds no list.
pub fn max_purgeable_timestamp_of<'a>(
    key: &DecoratedKey,
    other_sstables: impl Iterator<Item = &'a Sstable>,
    memtable_versions: impl Iterator<Item = &'a Partition>,
) -> i64 {
    let in_sstables = other_sstables
        .filter(|s| {
            let stats = s.stats();
            let in_range = stats.min_token.is_some_and(|t| t <= key.token)
                && stats.max_token.is_some_and(|t| key.token <= t);
            in_range && s.may_contain(key)
        })
        .filter_map(|s| s.stats().min_timestamp);
    let in_memtables = memtable_versions.filter_map(|p| p.min_timestamp());
    in_sstables.chain(in_memtables).min().unwrap_or(i64::MAX)
}

/// Bytes of input read-ahead a compaction holds in all (read buffers and reads in
/// flight of every input's index and data); each input gets its share, within the
/// scanner's bounds.
pub const READ_AHEAD_BUDGET_BYTES: usize = 16 * 1024 * 1024;

/// The inputs being merged: each one's scanner and the partition it is at, and a binary
/// min-heap (by that partition's key) of the inputs that have one.
struct MergeInputs {
    scanners: Vec<SstableScanner>,
    heads: Vec<Option<ScannedPartition>>,
    /// Input indexes; `heads[heap[0]]` holds the smallest key.
    heap: Vec<usize>,
    /// Buffers of partitions written, for the scanners to fill again.
    spare: Vec<Vec<u8>>,
}

/// What the merge found for the next key.
enum Merged {
    /// One input holds the key and its bytes can be written as they are.
    Copy(ScannedPartition),
    /// Every input's version, decoded and merged.
    Decoded(DecoratedKey, Partition),
}

impl MergeInputs {
    async fn open(inputs: &[Rc<Sstable>]) -> Result<MergeInputs, SstableError> {
        // Per input: index and data, each a buffer and a read in flight.
        let read_ahead = READ_AHEAD_BUDGET_BYTES / (4 * inputs.len().max(1));
        let mut merge = MergeInputs {
            scanners: inputs
                .iter()
                .map(|s| SstableScanner::new(Rc::clone(s), read_ahead))
                .collect(),
            heads: Vec::with_capacity(inputs.len()),
            heap: Vec::with_capacity(inputs.len()),
            spare: Vec::new(),
        };
        for i in 0..inputs.len() {
            let head = merge.scanners[i].next_scanned(Vec::new()).await?;
            merge.heads.push(head);
            if merge.heads[i].is_some() {
                merge.heap.push(i);
                merge.sift_up(merge.heap.len() - 1);
            }
        }
        Ok(merge)
    }

    fn key(&self, input: usize) -> &DecoratedKey {
        &self.heads[input]
            .as_ref()
            .expect("inputs in the heap have a head")
            .key
    }

    /// Heap order: by key, then by input, so the versions of a key merge in input order
    /// (the merged partition's range tombstones keep the order they had before heaps).
    fn less(&self, a: usize, b: usize) -> bool {
        let (a, b) = (self.heap[a], self.heap[b]);
        (self.key(a), a) < (self.key(b), b)
    }

    /// The smallest key among the inputs: its bytes when one input holds it and they
    /// can be copied, else every input's version of it decoded and merged.
    async fn next_merged(&mut self, read: &mut u64) -> Result<Option<Merged>, SstableError> {
        let Some(first) = self.pop().await? else {
            return Ok(None);
        };
        *read += 1;
        let alone = self
            .heap
            .first()
            .is_none_or(|&top| *self.key(top) != first.key);
        if alone && first.is_copyable() {
            return Ok(Some(Merged::Copy(first)));
        }
        let mut merged = first.decode()?;
        while self
            .heap
            .first()
            .is_some_and(|&top| *self.key(top) == first.key)
        {
            let next = self.pop().await?.expect("the heap is not empty");
            *read += 1;
            merged.merge(&next.decode()?);
            self.recycle(next);
        }
        let key = first.key.clone();
        self.recycle(first);
        Ok(Some(Merged::Decoded(key, merged)))
    }

    /// Keeps a partition's buffer for the scanners to reuse.
    fn recycle(&mut self, partition: ScannedPartition) {
        if self.spare.len() < 4 {
            self.spare.push(partition.into_buffer());
        }
    }

    /// Takes the smallest head and moves its input on.
    async fn pop(&mut self) -> Result<Option<ScannedPartition>, SstableError> {
        let Some(&top) = self.heap.first() else {
            return Ok(None);
        };
        let buffer = self.spare.pop().unwrap_or_default();
        let next = self.scanners[top].next_scanned(buffer).await?;
        let head = std::mem::replace(&mut self.heads[top], next);
        if self.heads[top].is_none() {
            let last = self.heap.pop().expect("the heap is not empty");
            if self.heap.is_empty() {
                return Ok(head);
            }
            self.heap[0] = last;
        }
        self.sift_down(0);
        Ok(head)
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if !self.less(at, parent) {
                return;
            }
            self.heap.swap(at, parent);
            at = parent;
        }
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let (left, right) = (2 * at + 1, 2 * at + 2);
            let mut smallest = at;
            if left < self.heap.len() && self.less(left, smallest) {
                smallest = left;
            }
            if right < self.heap.len() && self.less(right, smallest) {
                smallest = right;
            }
            if smallest == at {
                return;
            }
            self.heap.swap(at, smallest);
            at = smallest;
        }
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
    /// Partitions of the inputs: every output partition comes from at least one, so
    /// this less what the finished outputs hold bounds what the next output can hold
    /// (its bloom filter is sized for that and folded down at its end).
    input_partitions: u64,
}

impl Outputs<'_> {
    async fn add(
        &mut self,
        key: &DecoratedKey,
        partition: &Partition,
    ) -> Result<(), CompactionError> {
        let writer = self.writer_for(key).await?;
        writer.add_partition(key, partition).await?;
        self.last_token = Some(key.token);
        Ok(())
    }

    async fn add_copied(&mut self, scanned: &ScannedPartition) -> Result<(), CompactionError> {
        let writer = self.writer_for(&scanned.key).await?;
        writer.add_copied_partition(scanned).await?;
        self.last_token = Some(scanned.key.token);
        Ok(())
    }

    /// The output `key` goes to: the current one, or a new one once the current one
    /// is full and the token changes.
    async fn writer_for(
        &mut self,
        key: &DecoratedKey,
    ) -> Result<&mut SstableWriter, CompactionError> {
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
            let written: u64 = self.finished.iter().map(|m| m.stats.partition_count).sum();
            let mut writer = SstableWriter::create(
                self.txn.dir(),
                generation,
                self.options.sstable.clone(),
                self.input_partitions.saturating_sub(written),
            )
            .await?;
            writer.set_level(self.options.level);
            writer.set_replay_floor(self.options.replay_floor);
            self.current = Some(writer);
        }
        Ok(self.current.as_mut().expect("an output is open"))
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
    let mut merge = MergeInputs::open(inputs).await?;
    let mut outputs = Outputs {
        txn,
        next_generation,
        options: output,
        current: None,
        last_token: None,
        finished: Vec::new(),
        input_partitions: inputs.iter().map(|s| s.stats().partition_count).sum(),
    };
    let gc_before = purge.gc_before_secs();
    let (mut read, mut dropped, mut copied) = (0u64, 0u64, 0u64);
    // Reads and writes run ahead, so the merge may compute for long
    // stretches without waiting: it leaves room for requests every quota.
    let mut quota = scheduler::TaskQuota::new();
    while let Some(merged) = merge.next_merged(&mut read).await? {
        quota.tick().await;
        let (key, mut partition) = match merged {
            Merged::Copy(scanned) => {
                copied += 1;
                outputs.add_copied(&scanned).await?;
                merge.recycle(scanned);
                continue;
            }
            Merged::Decoded(key, partition) => (key, partition),
        };
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
        partitions_copied = copied,
        outputs = finished.len(),
        "compaction merged"
    );
    Ok(finished)
}
