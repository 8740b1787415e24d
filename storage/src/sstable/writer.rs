//! Writing an SSTable: partitions stream into compressed data chunks (each partition as
//! header, row blocks, end marker and, for several blocks, a clustering index) and their
//! index blocks into `Index.db`; summary, filter and statistics are kept in memory and
//! written at `finish`, then the TOC.
//!
//! The writer runs on the shard with reads waiting behind it, so nothing it does may take
//! a long stretch of CPU without a yield: the index is streamed (held whole, it grew by
//! reallocation, a copy of tens of MiB at a time, and was written and freed at the end),
//! the bloom filter is built as keys are added (sized up front for the partition count
//! the caller expects, folded down at the end), large encodings go in `TaskQuota`
//! slices, and the large buffers are freed on the blocking pool (unmapping tens of MiB
//! takes milliseconds of kernel time).
use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;

use scheduler::io::{self, DmaFile, MAX_IO_BYTES};

use super::bloom::{key_hash, Bloom};
use super::clustering::ClusteringStats;
use super::format::{
    create_file, decode_index_block, encode_clustering_index, encode_index_block,
    encode_partition_header, encode_stats, encode_summary, put_u32, read_file, seal_file,
    write_file, write_padded, CompressionInfo, IndexEntry, RowBlockEntry, SummaryEntry, TOC_HEADER,
};
use super::{Component, ScannedPartition, SstableError, SstableMeta, SstableOptions, SstableStats};
use crate::model::codec::encode_clustering_row;
use crate::model::{CellKind, DecoratedKey, Partition, Row};

/// Writes one SSTable. Partitions must be added in ring order; nothing is visible to
/// readers until [`SstableWriter::finish`] has written the TOC.
pub struct SstableWriter {
    dir: PathBuf,
    generation: u64,
    options: SstableOptions,
    data: DataStream,
    /// Uncompressed bytes not yet forming a whole chunk.
    chunk: Vec<u8>,
    uncompressed_len: u64,
    chunk_offsets: Vec<u64>,
    index: DataStream,
    block: Vec<IndexEntry>,
    summary: Vec<SummaryEntry>,
    /// Every key added so far, in a filter sized for `expected_partitions`.
    filter: Bloom,
    expected_partitions: u64,
    last_key: Option<DecoratedKey>,
    stats: SstableStats,
    clustering: ClusteringStats,
}

/// How far the filter's false-positive chance may exceed `bloom_fp_chance` (more keys
/// than the caller expected) before `finish` builds a new filter, sized for the real
/// count, from the index. At the default 1 % it allows about 10 % more keys.
const FILTER_REBUILD_FP_RATIO: f64 = 1.5;

/// Writes of `Data.db` in flight at once, each of [`MAX_IO_BYTES`]: the writer goes on
/// filling and compressing chunks while the disk writes the ones before.
const WRITES_IN_FLIGHT: usize = 4;

/// A write of `Data.db` running in its own task (in the writer's task queue, so in its
/// IO class).
type DataWrite = Pin<Box<dyn Future<Output = std::io::Result<()>>>>;

/// `Data.db` or `Index.db` being appended: whole aligned IOs go out as they fill, up to
/// [`WRITES_IN_FLIGHT`] at once.
struct DataStream {
    file: Rc<DmaFile>,
    path: PathBuf,
    pending: Vec<u8>,
    /// Bytes handed to writes (the file offset of `pending[0]`).
    flushed: u64,
    in_flight: VecDeque<DataWrite>,
}

impl DataStream {
    fn new(file: DmaFile, path: PathBuf) -> DataStream {
        DataStream {
            file: Rc::new(file),
            path,
            pending: Vec::new(),
            flushed: 0,
            in_flight: VecDeque::new(),
        }
    }

    fn len(&self) -> u64 {
        self.flushed + self.pending.len() as u64
    }

    async fn append(&mut self, bytes: &[u8]) -> Result<(), SstableError> {
        self.pending.extend_from_slice(bytes);
        self.write_whole_ios().await
    }

    /// Appends `chunk` lz4-compressed, then the CRC32 of the compressed bytes
    /// (compressed straight into the pending buffer).
    async fn append_compressed(&mut self, chunk: &[u8]) -> Result<(), SstableError> {
        let start = self.pending.len();
        let bound = lz4_flex::block::get_maximum_output_size(chunk.len());
        self.pending.resize(start + bound, 0);
        let len = lz4_flex::block::compress_into(chunk, &mut self.pending[start..])
            .expect("the output has the maximum compressed size");
        self.pending.truncate(start + len);
        let crc = crc32fast::hash(&self.pending[start..]);
        self.pending.extend_from_slice(&crc.to_be_bytes());
        self.write_whole_ios().await
    }

    /// Starts a write of every whole IO of pending bytes, waiting for the oldest write
    /// while more than [`WRITES_IN_FLIGHT`] run.
    async fn write_whole_ios(&mut self) -> Result<(), SstableError> {
        let mut written = 0;
        while self.pending.len() - written >= MAX_IO_BYTES {
            let mut buffer = self.file.alloc_buffer(MAX_IO_BYTES);
            buffer
                .as_bytes_mut()
                .copy_from_slice(&self.pending[written..written + MAX_IO_BYTES]);
            let (file, pos) = (Rc::clone(&self.file), self.flushed + written as u64);
            let write =
                scheduler::spawn_local_task(async move { file.write_at(buffer, pos).await });
            self.in_flight.push_back(Box::pin(write));
            written += MAX_IO_BYTES;
            if self.in_flight.len() > WRITES_IN_FLIGHT {
                self.wait_oldest().await?;
            }
        }
        self.pending.drain(..written);
        self.flushed += written as u64;
        Ok(())
    }

    async fn wait_oldest(&mut self) -> Result<(), SstableError> {
        if let Some(write) = self.in_flight.pop_front() {
            write.await.map_err(SstableError::io("write", &self.path))?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<u64, SstableError> {
        while !self.in_flight.is_empty() {
            self.wait_oldest().await?;
        }
        let len = self.len();
        write_padded(&self.file, &self.path, self.flushed, &self.pending).await?;
        let file = Rc::try_unwrap(self.file).expect("no write in flight holds the file");
        seal_file(file, &self.path, len).await?;
        Ok(len)
    }
}

impl std::fmt::Debug for SstableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstableWriter")
            .field("dir", &self.dir)
            .field("generation", &self.generation)
            .field("partitions", &self.stats.partition_count)
            .finish_non_exhaustive()
    }
}

impl SstableWriter {
    /// Starts SSTable `generation` in `dir` (which must exist). Fails if a complete
    /// SSTable of that generation is there; leftovers of an incomplete one are replaced.
    ///
    /// `expected_partitions` sizes the bloom filter, which is built as partitions are
    /// added: an upper bound is best (a flush knows its memtable's count, a compaction
    /// the sum of its inputs'); `finish` shrinks a filter sized for many more keys than
    /// were added. Fewer than were added degrades the filter's false-positive chance;
    /// past [`FILTER_REBUILD_FP_RATIO`] times `bloom_fp_chance`, `finish` builds the
    /// filter again from the index (a pass over every key, in quota slices).
    pub async fn create(
        dir: &Path,
        generation: u64,
        options: SstableOptions,
        expected_partitions: u64,
    ) -> Result<SstableWriter, SstableError> {
        validate(&options)?;
        let toc = Component::Toc.path(dir, generation);
        let probe = toc.clone();
        let exists = scheduler::spawn_blocking(move || probe.try_exists()).await;
        if exists.map_err(SstableError::io("stat", &toc))? {
            return Err(SstableError::AlreadyExists {
                dir: dir.to_path_buf(),
                generation,
            });
        }
        io::prepare_device(dir)
            .await
            .map_err(SstableError::io("prepare device", dir))?;
        let path = Component::Data.path(dir, generation);
        let data = DataStream::new(create_file(&path).await?, path);
        let path = Component::Index.path(dir, generation);
        let index = DataStream::new(create_file(&path).await?, path);
        Ok(SstableWriter {
            dir: dir.to_path_buf(),
            generation,
            data,
            index,
            chunk: Vec::with_capacity(options.chunk_size),
            filter: Bloom::foldable(expected_partitions, options.bloom_fp_chance),
            expected_partitions,
            options,
            uncompressed_len: 0,
            chunk_offsets: Vec::new(),
            block: Vec::new(),
            summary: Vec::new(),
            last_key: None,
            stats: SstableStats::default(),
            clustering: ClusteringStats::default(),
        })
    }

    /// Appends a partition; `key` must sort after every key added before.
    pub async fn add_partition(
        &mut self,
        key: &DecoratedKey,
        partition: &Partition,
    ) -> Result<(), SstableError> {
        self.check_order(key)?;
        let position = self.uncompressed_len;
        self.append_framed(&encode_partition_header(key, partition))
            .await?;
        let blocks = self.append_row_blocks(partition).await?;
        self.append_uncompressed(&0u32.to_be_bytes()).await?;
        let clustering_index = if blocks.len() >= 2 {
            let at = self.uncompressed_len;
            self.append_framed(&encode_clustering_index(&blocks))
                .await?;
            at
        } else {
            0
        };
        self.record_key(key, position, clustering_index).await?;
        self.record_stats(key, partition);
        Ok(())
    }

    /// Appends a partition read by a scanner, its bytes unchanged; it must be
    /// [`ScannedPartition::is_copyable`] and its key sort after every key added before.
    /// What compaction writes for a plain partition no other input holds: compacting
    /// it would change nothing, and decoding and encoding it again would give the
    /// same bytes.
    pub async fn add_copied_partition(
        &mut self,
        scanned: &ScannedPartition,
    ) -> Result<(), SstableError> {
        assert!(
            scanned.is_copyable(),
            "only plain one-block partitions are copied"
        );
        let key = &scanned.key;
        self.check_order(key)?;
        let position = self.uncompressed_len;
        self.append_uncompressed(&scanned.bytes).await?;
        self.record_key(key, position, 0).await?;
        let skim = &scanned.skim;
        let s = &mut self.stats;
        s.partition_count += 1;
        s.min_token.get_or_insert(key.token);
        s.max_token = Some(key.token);
        s.min_timestamp = Some(
            s.min_timestamp
                .map_or(skim.min_timestamp, |m| m.min(skim.min_timestamp)),
        );
        s.max_timestamp = Some(
            s.max_timestamp
                .map_or(skim.max_timestamp, |m| m.max(skim.max_timestamp)),
        );
        s.cell_count += skim.cells;
        self.clustering.record_plain(
            skim.static_row,
            skim.first_clustering.as_deref(),
            skim.last_clustering.as_deref(),
        );
        Ok(())
    }

    fn check_order(&self, key: &DecoratedKey) -> Result<(), SstableError> {
        match self.last_key.as_ref().filter(|p| *p >= key) {
            Some(previous) => Err(SstableError::OutOfOrder {
                previous_token: previous.token,
                previous_key: previous.key.to_vec(),
                token: key.token,
                key: key.key.to_vec(),
            }),
            None => Ok(()),
        }
    }

    /// Appends `length u32 | payload`.
    async fn append_framed(&mut self, payload: &[u8]) -> Result<(), SstableError> {
        let len = u32::try_from(payload.len()).map_err(|_| SstableError::InvalidOptions {
            reason: format!("a partition part of {} bytes exceeds 4 GiB", payload.len()),
        })?;
        self.append_uncompressed(&len.to_be_bytes()).await?;
        self.append_uncompressed(payload).await
    }

    /// Appends the partition's rows as row blocks of about `row_block_size` bytes each;
    /// returns the blocks' clustering index entries.
    async fn append_row_blocks(
        &mut self,
        partition: &Partition,
    ) -> Result<Vec<RowBlockEntry>, SstableError> {
        let mut blocks = Vec::new();
        let mut block = RowBlockBuilder::default();
        for (clustering, row) in &partition.rows {
            block.push(clustering, row);
            if block.body.len() >= self.options.row_block_size {
                blocks.push(self.append_row_block(&mut block).await?);
            }
        }
        if block.count > 0 {
            blocks.push(self.append_row_block(&mut block).await?);
        }
        Ok(blocks)
    }

    async fn append_row_block(
        &mut self,
        block: &mut RowBlockBuilder,
    ) -> Result<RowBlockEntry, SstableError> {
        let position = self.uncompressed_len;
        let mut payload = Vec::with_capacity(block.body.len() + 4);
        put_u32(&mut payload, block.count);
        payload.extend_from_slice(&block.body);
        self.append_framed(&payload).await?;
        let entry = RowBlockEntry {
            first: block.first.take().unwrap_or_default(),
            last: block.last.take().unwrap_or_default(),
            position,
            len: (payload.len() + 4) as u32,
        };
        *block = RowBlockBuilder::default();
        Ok(entry)
    }

    async fn append_uncompressed(&mut self, mut bytes: &[u8]) -> Result<(), SstableError> {
        self.uncompressed_len += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = self.options.chunk_size - self.chunk.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.chunk.extend_from_slice(now);
            bytes = rest;
            if self.chunk.len() == self.options.chunk_size {
                self.flush_chunk().await?;
            }
        }
        Ok(())
    }

    /// Compresses the pending chunk and appends it with its CRC.
    async fn flush_chunk(&mut self) -> Result<(), SstableError> {
        self.chunk_offsets.push(self.data.len());
        self.data.append_compressed(&self.chunk).await?;
        self.chunk.clear();
        Ok(())
    }

    async fn record_key(
        &mut self,
        key: &DecoratedKey,
        position: u64,
        clustering_index: u64,
    ) -> Result<(), SstableError> {
        self.filter.insert(key_hash(&key.key));
        self.block.push(IndexEntry {
            key: key.clone(),
            position,
            clustering_index,
        });
        if self.block.len() >= self.options.index_block_entries {
            self.flush_index_block().await?;
        }
        self.last_key = Some(key.clone());
        Ok(())
    }

    async fn flush_index_block(&mut self) -> Result<(), SstableError> {
        let Some(first) = self.block.first() else {
            return Ok(());
        };
        let bytes = encode_index_block(&self.block);
        self.summary.push(SummaryEntry {
            first_key: first.key.clone(),
            offset: self.index.len(),
            len: bytes.len() as u32,
        });
        self.block.clear();
        self.index.append(&bytes).await
    }

    fn record_stats(&mut self, key: &DecoratedKey, partition: &Partition) {
        let s = &mut self.stats;
        s.partition_count += 1;
        s.min_token.get_or_insert(key.token);
        s.max_token = Some(key.token);
        for ts in partition_timestamps(partition) {
            s.min_timestamp = Some(s.min_timestamp.map_or(ts, |m| m.min(ts)));
            s.max_timestamp = Some(s.max_timestamp.map_or(ts, |m| m.max(ts)));
        }
        self.clustering.record(partition);
        let counts = PartitionCounts::of(partition);
        s.cell_count += counts.cells;
        s.tombstone_count += counts.tombstones;
        for t in counts.drop_times {
            s.min_local_deletion_time = Some(s.min_local_deletion_time.map_or(t, |m| m.min(t)));
            s.max_local_deletion_time = Some(s.max_local_deletion_time.map_or(t, |m| m.max(t)));
        }
    }

    /// Records the commitlog replay floor in its statistics (default none; see
    /// [`super::SstableStats::replay_floor`]).
    pub fn set_replay_floor(&mut self, floor: Option<crate::commitlog::ReplayPosition>) {
        self.stats.replay_floor = floor;
    }

    /// Records the SSTable's compaction level in its statistics (default 0).
    pub fn set_level(&mut self, level: u32) {
        self.stats.level = level;
    }

    /// Bytes of `Data.db` so far: compressed chunks written plus the chunk being filled
    /// (uncompressed). Compaction splits its output when this passes a limit.
    pub fn data_bytes_estimate(&self) -> u64 {
        self.data.len() + self.chunk.len() as u64
    }

    /// Writes the remaining components, makes them durable, then publishes the TOC.
    pub async fn finish(mut self) -> Result<SstableMeta, SstableError> {
        if !self.chunk.is_empty() {
            self.flush_chunk().await?;
        }
        self.flush_index_block().await?;
        let data_len = self.data.len();
        self.chunk_offsets.push(data_len);
        let (dir, generation) = (self.dir.clone(), self.generation);
        self.data.finish().await?;
        let index_path = self.index.path.clone();
        self.index.finish().await?;
        let partitions = self.stats.partition_count;
        if !fit_filter(&mut self.filter, partitions, &self.options) {
            tracing::debug!(
                generation,
                expected = self.expected_partitions,
                partitions,
                "more partitions than expected: building the bloom filter again"
            );
            self.filter =
                filter_from_index(&index_path, &self.summary, partitions, &self.options).await?;
        }
        self.stats.uncompressed_bytes = self.uncompressed_len;
        self.stats.data_bytes = data_len;
        self.stats.created_at_secs = i64::from(scheduler::clock::now_secs());
        let compression = CompressionInfo {
            chunk_size: self.options.chunk_size as u64,
            uncompressed_len: self.uncompressed_len,
            offsets: self.chunk_offsets,
        };
        let path = |c: Component| c.path(&dir, generation);
        let chunk_table = compression.encode().await;
        write_file(&path(Component::CompressionInfo), &chunk_table).await?;
        write_file(
            &path(Component::Summary),
            &encode_summary(&self.summary).await,
        )
        .await?;
        let filter = self.filter.encode().await;
        write_file(&path(Component::Filter), &filter).await?;
        write_file(
            &path(Component::Statistics),
            &encode_stats(&self.stats, &self.clustering),
        )
        .await?;
        write_toc(&dir, generation).await?;
        let buffers = (self.summary, self.filter, compression, chunk_table, filter);
        scheduler::spawn_blocking(move || drop(buffers)).await;
        Ok(SstableMeta {
            dir,
            generation,
            stats: self.stats,
        })
    }
}

/// Folds `filter` down to what `partitions` keys need (`true`), or returns `false`
/// when it holds too many keys to meet the chance [`FILTER_REBUILD_FP_RATIO`] allows.
fn fit_filter(filter: &mut Bloom, partitions: u64, options: &SstableOptions) -> bool {
    let fp_chance = options.bloom_fp_chance;
    if filter.fp_chance_at(partitions) > fp_chance * FILTER_REBUILD_FP_RATIO {
        return false;
    }
    filter.fold_to(partitions, fp_chance);
    true
}

/// A filter built from the keys of the finished `Index.db` at `index_path`, in quota
/// slices (the writer's filter was sized for far fewer keys).
async fn filter_from_index(
    index_path: &Path,
    summary: &[SummaryEntry],
    partitions: u64,
    options: &SstableOptions,
) -> Result<Bloom, SstableError> {
    let index = read_file(index_path, Component::Index).await?;
    let mut filter = Bloom::foldable(partitions, options.bloom_fp_chance);
    let mut quota = scheduler::TaskQuota::new();
    for entry in summary {
        let start = entry.offset as usize;
        let block = index
            .get(start..start + entry.len as usize)
            .ok_or_else(|| {
                SstableError::malformed(
                    Component::Index,
                    entry.offset,
                    "index shorter than its summary",
                )
            })?;
        for e in decode_index_block(entry.offset, block)? {
            filter.insert(key_hash(&e.key.key));
            quota.tick().await;
        }
    }
    scheduler::spawn_blocking(move || drop(index)).await;
    Ok(filter)
}

/// The row block being filled: its encoded rows and first and last clustering keys.
#[derive(Default)]
struct RowBlockBuilder {
    body: Vec<u8>,
    count: u32,
    first: Option<Bytes>,
    last: Option<Bytes>,
}

impl RowBlockBuilder {
    fn push(&mut self, clustering: &Bytes, row: &Row) {
        encode_clustering_row(&mut self.body, clustering, row);
        self.count += 1;
        self.first.get_or_insert_with(|| clustering.clone());
        self.last = Some(clustering.clone());
    }
}

fn validate(options: &SstableOptions) -> Result<(), SstableError> {
    let reason = if options.chunk_size == 0 || options.chunk_size > 64 * 1024 * 1024 {
        "chunk_size must be in 1..=64 MiB"
    } else if !(options.bloom_fp_chance > 0.0 && options.bloom_fp_chance < 1.0) {
        "bloom_fp_chance must be in (0, 1)"
    } else if options.index_block_entries == 0 {
        "index_block_entries must be positive"
    } else if options.row_block_size == 0 || options.row_block_size > 64 * 1024 * 1024 {
        "row_block_size must be in 1..=64 MiB"
    } else {
        return Ok(());
    };
    Err(SstableError::InvalidOptions {
        reason: reason.into(),
    })
}

/// Every timestamp a partition carries (cells, markers, tombstones).
fn partition_timestamps(p: &Partition) -> impl Iterator<Item = i64> + '_ {
    let rows = p.static_row.as_deref().into_iter().chain(p.rows.values());
    p.deletion
        .iter()
        .map(|t| t.timestamp)
        .chain(p.range_tombstones.iter().map(|rt| rt.tombstone.timestamp))
        .chain(rows.flat_map(row_timestamps))
}

fn row_timestamps(row: &Row) -> impl Iterator<Item = i64> + '_ {
    row.marker
        .iter()
        .map(|m| m.timestamp)
        .chain(row.deletion.iter().map(|t| t.timestamp))
        .chain(row.cells.values().map(|c| c.timestamp))
        .chain(row.complex_deletions.values().map(|t| t.timestamp))
}

/// A partition's cell and tombstone counts and its local deletion times (tombstones'
/// deletion times and TTL values' expiries), for `Statistics.db`.
struct PartitionCounts {
    cells: u64,
    tombstones: u64,
    drop_times: Vec<i32>,
}

impl PartitionCounts {
    fn of(p: &Partition) -> PartitionCounts {
        let mut counts = PartitionCounts {
            cells: 0,
            tombstones: 0,
            drop_times: Vec::new(),
        };
        let tombstones = p
            .deletion
            .iter()
            .chain(p.range_tombstones.iter().map(|rt| &rt.tombstone));
        for t in tombstones {
            counts.add(true, Some(t.deletion_time));
        }
        for row in p.static_row.as_deref().into_iter().chain(p.rows.values()) {
            counts.add_row(row);
        }
        counts
    }

    fn add(&mut self, tombstone: bool, drop_time: Option<i32>) {
        self.cells += 1;
        self.tombstones += u64::from(tombstone);
        self.drop_times.extend(drop_time);
    }

    fn add_row(&mut self, row: &Row) {
        if let Some(marker) = &row.marker {
            let expires = marker.expiry.map(|e| e.expires_at);
            self.add(expires.is_some(), expires);
        }
        for t in row.deletion.iter().chain(row.complex_deletions.values()) {
            self.add(true, Some(t.deletion_time));
        }
        for cell in row.cells.values() {
            let drop_time = match &cell.kind {
                CellKind::Dead { deletion_time } => Some(*deletion_time),
                CellKind::Live { expiry, .. } => expiry.map(|e| e.expires_at),
            };
            self.add(drop_time.is_some(), drop_time);
        }
    }
}

/// Writes the TOC under a temporary name, renames it into place and syncs the directory:
/// once the rename is durable the SSTable is complete.
async fn write_toc(dir: &Path, generation: u64) -> Result<(), SstableError> {
    let mut text = format!("{TOC_HEADER} {}\n", super::SSTABLE_FORMAT_VERSION);
    for c in Component::LISTED {
        text.push_str(c.name());
        text.push('\n');
    }
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("crc32 {crc:08x}\n"));
    // The other components' directory entries must be durable before the TOC's can be.
    io::sync_directory(dir)
        .await
        .map_err(SstableError::io("sync directory", dir))?;
    let toc = Component::Toc.path(dir, generation);
    let tmp = dir.join(format!("tsr-{generation}-TOC.txt.tmp"));
    write_file(&tmp, text.as_bytes()).await?;
    io::rename(&tmp, &toc)
        .await
        .map_err(SstableError::io("rename", &toc))?;
    io::sync_directory(dir)
        .await
        .map_err(SstableError::io("sync directory", dir))
}
