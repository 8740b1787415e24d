//! Reading an SSTable: open verifies the TOC and loads the small components (filter,
//! summary, chunk table, statistics); lookups read one index block and the data chunks
//! holding the partition (or, for a slice, its header, its clustering index and the row
//! blocks that can hold the slice), verifying every checksum on the way. Decompressed
//! chunks come from and go to the shard's [`ChunkCache`].
use std::cell::Cell;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use scheduler::io::DmaFile;

use super::bloom::Bloom;
use super::cache::{CacheHandle, ChunkCache};
use super::clustering::ClusteringStats;
use super::format::{
    decode_clustering_index, decode_index_block, decode_partition_header, decode_row_block,
    decode_stats, decode_summary, read_file, read_span, verify_crc, CompressionInfo, IndexEntry,
    RowBlockEntry, SummaryEntry, TOC_HEADER,
};
use super::{
    Component, SstableError, SstableStats, OLDEST_READABLE_FORMAT_VERSION, SSTABLE_FORMAT_VERSION,
};
use crate::model::{DecoratedKey, Partition, PartitionRange, Row, SliceQuery};

/// A clustering range as plain `memcmp` bounds (`ClusteringRange::key_bounds`).
type KeyBounds = (Bound<Bytes>, Bound<Bytes>);

/// Cache ids of index blocks: the block's offset in `Index.db` with this bit
/// set (data chunks are numbered from 0).
const INDEX_BLOCK: u64 = 1 << 63;

/// An open, complete SSTable.
pub struct Sstable {
    dir: PathBuf,
    generation: u64,
    pub(super) data: DmaFile,
    pub(super) index: DmaFile,
    pub(super) compression: CompressionInfo,
    pub(super) summary: Vec<SummaryEntry>,
    bloom: Bloom,
    stats: SstableStats,
    /// What it holds below the partition level (`None`: format 3, not recorded).
    clustering: Option<ClusteringStats>,
    /// This SSTable's place in the shard's chunk cache.
    cache: CacheHandle,
    /// Chunks read from disk (cache misses) since open.
    chunks_read: Cell<u64>,
    /// Index blocks read from disk (cache misses) since open.
    index_blocks_read: Cell<u64>,
}

impl std::fmt::Debug for Sstable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sstable")
            .field("dir", &self.dir)
            .field("generation", &self.generation)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Sstable {
    /// Opens SSTable `generation` in `dir`, caching its chunks in the shard's
    /// [`ChunkCache::shard`]; fails with [`SstableError::Incomplete`] if it has no TOC,
    /// and with a checksum or format error if any component read is damaged.
    pub async fn open(dir: &Path, generation: u64) -> Result<Sstable, SstableError> {
        Self::open_with_cache(dir, generation, ChunkCache::shard()).await
    }

    /// [`Sstable::open`] with chunks cached in `cache`.
    pub async fn open_with_cache(
        dir: &Path,
        generation: u64,
        cache: Rc<ChunkCache>,
    ) -> Result<Sstable, SstableError> {
        // Direct IO needs the device probed before the first open in this thread.
        scheduler::io::prepare_device(dir)
            .await
            .map_err(SstableError::io("prepare device", dir))?;
        read_toc(dir, generation).await?;
        let path = |c: Component| c.path(dir, generation);
        let compression = CompressionInfo::decode(
            &read_file(
                &path(Component::CompressionInfo),
                Component::CompressionInfo,
            )
            .await?,
        )?;
        let summary =
            decode_summary(&read_file(&path(Component::Summary), Component::Summary).await?)?;
        let bloom = Bloom::decode(&read_file(&path(Component::Filter), Component::Filter).await?)?;
        let (stats, clustering) =
            decode_stats(&read_file(&path(Component::Statistics), Component::Statistics).await?)?;
        let data = open_sized(&path(Component::Data), compression.offsets.last().copied()).await?;
        let index = open_sized(&path(Component::Index), None).await?;
        if stats.uncompressed_bytes != compression.uncompressed_len {
            return Err(SstableError::malformed(
                Component::Statistics,
                0,
                "uncompressed length disagrees with the chunk table",
            ));
        }
        Ok(Sstable {
            dir: dir.to_path_buf(),
            generation,
            data,
            index,
            compression,
            summary,
            bloom,
            stats,
            clustering,
            cache: CacheHandle::new(cache),
            chunks_read: Cell::new(0),
            index_blocks_read: Cell::new(0),
        })
    }

    /// Closes the SSTable's files (dropping it closes them in the background).
    pub async fn close(self) -> Result<(), SstableError> {
        let data = Component::Data.path(&self.dir, self.generation);
        let index = Component::Index.path(&self.dir, self.generation);
        self.data
            .close()
            .await
            .map_err(SstableError::io("close", &data))?;
        self.index
            .close()
            .await
            .map_err(SstableError::io("close", &index))
    }

    /// The SSTable's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The SSTable's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What `Statistics.db` records.
    pub fn stats(&self) -> &SstableStats {
        &self.stats
    }

    /// Whether a point read of `slice` may find anything here: false only when the
    /// clustering statistics show that no row or range tombstone lies in the slice
    /// and no partition has a partition tombstone or static row.
    pub fn may_intersect(&self, slice: &SliceQuery) -> bool {
        self.clustering
            .as_ref()
            .is_none_or(|clustering| clustering.may_intersect(slice))
    }

    /// Whether the SSTable may hold `key` (bloom filter: no false negatives).
    pub fn may_contain(&self, key: &DecoratedKey) -> bool {
        self.bloom.may_contain(&key.key)
    }

    /// How many data chunks this SSTable read from disk (missing the cache) since open.
    pub fn data_chunks_read(&self) -> u64 {
        self.chunks_read.get()
    }

    /// How many index blocks this SSTable read from disk (missing the cache) since open.
    pub fn index_blocks_read(&self) -> u64 {
        self.index_blocks_read.get()
    }

    /// The whole partition with `key`, if this SSTable holds it.
    pub async fn read_partition(
        &self,
        key: &DecoratedKey,
    ) -> Result<Option<Partition>, SstableError> {
        let Some((entry, block_offset)) = self.find(key).await? else {
            return Ok(None);
        };
        let partition = self.read_partition_at(&entry, block_offset).await?;
        Ok(Some(partition))
    }

    /// The part of the partition with `key` that `slice` can see, if this SSTable holds
    /// the partition: its tombstone and static row, the range tombstones overlapping the
    /// slice's ranges, and only the rows inside them, in clustering order whatever
    /// `slice.reversed` says (the read path orders them). Reads the partition's header,
    /// its clustering index (when it has several row blocks) and only the row blocks
    /// whose key span meets a range. The slice's row limit and columns are not applied.
    pub async fn read_partition_slice(
        &self,
        key: &DecoratedKey,
        slice: &SliceQuery,
    ) -> Result<Option<Partition>, SstableError> {
        let Some((entry, block_offset)) = self.find(key).await? else {
            return Ok(None);
        };
        let ranges: Vec<KeyBounds> = slice.ranges.iter().filter_map(|r| r.key_bounds()).collect();
        let (mut partition, rows_start) = self.read_header(&entry, block_offset).await?;
        partition.range_tombstones.retain(|rt| {
            rt.range
                .key_bounds()
                .is_some_and(|b| ranges.iter().any(|r| bounds_overlap(&b, r)))
        });
        if ranges.is_empty() {
            return Ok(Some(partition));
        }
        let whole = ranges
            .iter()
            .any(|r| matches!(r, (Bound::Unbounded, Bound::Unbounded)));
        // Every block is needed for an unbounded range: walking them costs no index read.
        let blocks = if entry.clustering_index == 0 || whole {
            self.row_blocks_from(rows_start).await?
        } else {
            let index = self.read_clustering_index(entry.clustering_index).await?;
            blocks_meeting(&index, &ranges)
        };
        for (position, len) in blocks {
            for (clustering, row) in self.read_row_block(position, len).await? {
                if ranges.iter().any(|r| within(&clustering, r)) {
                    partition.rows.insert(clustering, row);
                }
            }
        }
        Ok(Some(partition))
    }

    /// The index entry of `key` and the offset of the index block holding it.
    async fn find(&self, key: &DecoratedKey) -> Result<Option<(IndexEntry, u64)>, SstableError> {
        if !self.may_contain(key) {
            return Ok(None);
        }
        let block = self.summary.partition_point(|e| e.first_key <= *key);
        let Some(summary) = block.checked_sub(1).map(|b| &self.summary[b]) else {
            return Ok(None);
        };
        let mut entries = self.read_index_block(summary).await?;
        let Ok(found) = entries.binary_search_by(|e| e.key.cmp(key)) else {
            return Ok(None);
        };
        Ok(Some((entries.swap_remove(found), summary.offset)))
    }

    /// Every partition in `range`, in ring order.
    pub async fn scan(
        &self,
        range: &PartitionRange,
    ) -> Result<Vec<(DecoratedKey, Partition)>, SstableError> {
        self.scan_limited(range, usize::MAX).await
    }

    /// The first `limit` partitions in `range`, in ring order. A caller continues a scan
    /// by asking again with the range's start moved past the last key returned; fewer
    /// than `limit` partitions means the range is exhausted.
    pub async fn scan_limited(
        &self,
        range: &PartitionRange,
        limit: usize,
    ) -> Result<Vec<(DecoratedKey, Partition)>, SstableError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let first_block = match range.seek_start() {
            Bound::Unbounded => 0,
            Bound::Included(k) | Bound::Excluded(k) => self
                .summary
                .partition_point(|e| e.first_key < k)
                .saturating_sub(1),
        };
        let mut out = Vec::new();
        for entry in &self.summary[first_block.min(self.summary.len())..] {
            for index_entry in self.read_index_block(entry).await? {
                if !range.after_start(&index_entry.key) {
                    continue;
                }
                if !range.before_end(&index_entry.key) {
                    return Ok(out);
                }
                let partition = self.read_partition_at(&index_entry, entry.offset).await?;
                out.push((index_entry.key, partition));
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    async fn read_index_block(
        &self,
        entry: &SummaryEntry,
    ) -> Result<Vec<IndexEntry>, SstableError> {
        // Index blocks share the chunk cache, so a hot key's lookup reads
        // no index from disk; the block's CRC is checked on every decode.
        let id = self.cache.id(INDEX_BLOCK | entry.offset);
        if let Some(bytes) = self.cache.cache.get(id) {
            return decode_index_block(entry.offset, &bytes);
        }
        let path = Component::Index.path(&self.dir, self.generation);
        let bytes = read_span(
            &self.index,
            &path,
            Component::Index,
            entry.offset,
            entry.len as usize,
        )
        .await?;
        let entries = decode_index_block(entry.offset, &bytes)?;
        self.index_blocks_read.set(self.index_blocks_read.get() + 1);
        self.cache.cache.insert(id, bytes.into());
        Ok(entries)
    }

    /// The whole partition an index entry points at (found in the index block at
    /// `block_offset`).
    async fn read_partition_at(
        &self,
        entry: &IndexEntry,
        block_offset: u64,
    ) -> Result<Partition, SstableError> {
        let (mut partition, rows_start) = self.read_header(entry, block_offset).await?;
        for (position, len) in self.row_blocks_from(rows_start).await? {
            partition
                .rows
                .extend(self.read_row_block(position, len).await?);
        }
        Ok(partition)
    }

    /// The partition's header (as a partition without rows, its key checked against the
    /// index) and the data position of its first row block.
    async fn read_header(
        &self,
        entry: &IndexEntry,
        block_offset: u64,
    ) -> Result<(Partition, u64), SstableError> {
        let position = entry.position;
        let payload = self.read_framed(position).await?;
        let (stored, partition) = decode_partition_header(position, &payload)?;
        if stored != entry.key {
            return Err(SstableError::malformed(
                Component::Index,
                block_offset,
                format!("index points at position {position} holding another key"),
            ));
        }
        Ok((partition, position + 4 + payload.len() as u64))
    }

    /// Walks the row blocks starting at `position` up to the end marker; returns each
    /// block's position and length (prefix included).
    async fn row_blocks_from(&self, mut position: u64) -> Result<Vec<(u64, u32)>, SstableError> {
        let mut blocks = Vec::new();
        loop {
            let len = self.read_u32(position).await?;
            if len == 0 {
                return Ok(blocks);
            }
            let framed = len.checked_add(4).ok_or_else(|| {
                SstableError::malformed(Component::Data, position, "row block too long")
            })?;
            blocks.push((position, framed));
            position += u64::from(framed);
        }
    }

    /// The rows of the block at `position`, `len` bytes with its length prefix.
    async fn read_row_block(
        &self,
        position: u64,
        len: u32,
    ) -> Result<Vec<(Bytes, Row)>, SstableError> {
        let bytes = self.read_uncompressed(position, len as usize).await?;
        let stored = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if u64::from(stored) + 4 != u64::from(len) {
            return Err(SstableError::malformed(
                Component::Data,
                position,
                "row block length disagrees with the clustering index",
            ));
        }
        decode_row_block(position, &bytes[4..])
    }

    async fn read_clustering_index(
        &self,
        position: u64,
    ) -> Result<Vec<RowBlockEntry>, SstableError> {
        let payload = self.read_framed(position).await?;
        decode_clustering_index(position, &payload)
    }

    /// The payload of `length u32 | payload` at `position`.
    async fn read_framed(&self, position: u64) -> Result<Vec<u8>, SstableError> {
        let len = self.read_u32(position).await?;
        self.read_uncompressed(position + 4, len as usize).await
    }

    async fn read_u32(&self, position: u64) -> Result<u32, SstableError> {
        let b = self.read_uncompressed(position, 4).await?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `len` bytes of the uncompressed stream at `pos`, from verified chunks.
    async fn read_uncompressed(&self, pos: u64, len: usize) -> Result<Vec<u8>, SstableError> {
        let end = pos.checked_add(len as u64);
        if end.is_none_or(|e| e > self.compression.uncompressed_len) {
            return Err(SstableError::malformed(
                Component::Data,
                pos,
                format!("{len} bytes run past the end of the data"),
            ));
        }
        let chunk_size = self.compression.chunk_size;
        let mut out = Vec::with_capacity(len);
        let mut at = pos;
        while out.len() < len {
            let index = at / chunk_size;
            let chunk = self.chunk(index).await?;
            let from = (at - index * chunk_size) as usize;
            let take = (len - out.len()).min(chunk.len() - from);
            out.extend_from_slice(&chunk[from..from + take]);
            at += take as u64;
        }
        Ok(out)
    }

    /// Decompressed chunk `index`, verified against its CRC.
    async fn chunk(&self, index: u64) -> Result<Rc<[u8]>, SstableError> {
        let id = self.cache.id(index);
        if let Some(bytes) = self.cache.cache.get(id) {
            return Ok(bytes);
        }
        let offsets = &self.compression.offsets;
        let i = index as usize;
        let (Some(&start), Some(&end)) = (offsets.get(i), offsets.get(i + 1)) else {
            return Err(SstableError::malformed(
                Component::Data,
                0,
                "chunk past the table",
            ));
        };
        let path = Component::Data.path(&self.dir, self.generation);
        let len = (end - start) as usize;
        let raw = read_span(&self.data, &path, Component::Data, start, len).await?;
        let body = raw.len().saturating_sub(4);
        verify_crc(Component::Data, start, &raw[..body], &raw[body..])?;
        let chunk_size = self.compression.chunk_size;
        let expected = (self.compression.uncompressed_len - index * chunk_size).min(chunk_size);
        let bytes: Rc<[u8]> = lz4_flex::block::decompress(&raw[..body], expected as usize)
            .ok()
            .filter(|b| b.len() as u64 == expected)
            .ok_or_else(|| {
                SstableError::malformed(Component::Data, start, "chunk undecompressible")
            })?
            .into();
        self.chunks_read.set(self.chunks_read.get() + 1);
        self.cache.cache.insert(id, Rc::clone(&bytes));
        Ok(bytes)
    }
}

/// Whether two `memcmp` ranges (starts inclusive or unbounded, ends exclusive or
/// unbounded, as `key_bounds` makes them) share a key.
fn bounds_overlap(a: &KeyBounds, b: &KeyBounds) -> bool {
    starts_before_end(&a.0, &b.1) && starts_before_end(&b.0, &a.1)
}

fn starts_before_end(start: &Bound<Bytes>, end: &Bound<Bytes>) -> bool {
    match (start, end) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => true,
        (Bound::Included(s), Bound::Excluded(e)) => s < e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => {
            s <= e
        }
    }
}

/// Whether `key` lies inside `bounds`.
fn within(key: &[u8], bounds: &KeyBounds) -> bool {
    let after_start = match &bounds.0 {
        Bound::Unbounded => true,
        Bound::Included(s) => key >= &s[..],
        Bound::Excluded(s) => key > &s[..],
    };
    let before_end = match &bounds.1 {
        Bound::Unbounded => true,
        Bound::Included(e) => key <= &e[..],
        Bound::Excluded(e) => key < &e[..],
    };
    after_start && before_end
}

/// The row blocks (position, length) whose `[first, last]` key span meets any of
/// `ranges`, each once, in data order.
fn blocks_meeting(index: &[RowBlockEntry], ranges: &[KeyBounds]) -> Vec<(u64, u32)> {
    let mut chosen = BTreeSet::new();
    for (start, end) in ranges {
        // Blocks are in clustering order with disjoint spans: skip those ending before
        // the range starts, take blocks until one starts at or after its end.
        let first = index.partition_point(|b| match start {
            Bound::Unbounded => false,
            Bound::Included(s) => b.last < *s,
            Bound::Excluded(s) => b.last <= *s,
        });
        for (i, block) in index.iter().enumerate().skip(first) {
            let past_end = match end {
                Bound::Unbounded => false,
                Bound::Included(e) => block.first > *e,
                Bound::Excluded(e) => block.first >= *e,
            };
            if past_end {
                break;
            }
            chosen.insert(i);
        }
    }
    chosen
        .into_iter()
        .map(|i| (index[i].position, index[i].len))
        .collect()
}

/// Opens a component for reading, checking its length when it is known.
async fn open_sized(path: &Path, expected: Option<u64>) -> Result<DmaFile, SstableError> {
    let file = DmaFile::open(path)
        .await
        .map_err(SstableError::io("open", path))?;
    let size = file
        .file_size()
        .await
        .map_err(SstableError::io("stat", path))?;
    if expected.is_some_and(|e| e != size) {
        return Err(SstableError::malformed(
            Component::Data,
            size,
            format!("file is {size} bytes, chunk table says {expected:?}"),
        ));
    }
    Ok(file)
}

/// Reads and verifies the TOC: header, checksum, and every component listed.
async fn read_toc(dir: &Path, generation: u64) -> Result<(), SstableError> {
    let path = Component::Toc.path(dir, generation);
    let bytes = match read_file(&path, Component::Toc).await {
        Err(SstableError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(SstableError::Incomplete {
                dir: dir.to_path_buf(),
                generation,
            })
        }
        other => other?,
    };
    let bad = |reason: &str| SstableError::malformed(Component::Toc, 0, reason);
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8"))?;
    let crc_at = text
        .rfind("crc32 ")
        .ok_or_else(|| bad("no checksum line"))?;
    let computed = crc32fast::hash(&bytes[..crc_at]);
    if text[crc_at..] != format!("crc32 {computed:08x}\n") {
        return Err(bad("checksum line does not match the contents"));
    }
    let mut lines = text[..crc_at].lines();
    let version = lines
        .next()
        .and_then(|line| line.strip_prefix(TOC_HEADER))
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| bad("unknown header"))?;
    if !(OLDEST_READABLE_FORMAT_VERSION..=SSTABLE_FORMAT_VERSION).contains(&version) {
        return Err(SstableError::UnsupportedVersion {
            component: Component::Toc,
            version,
            supported: SSTABLE_FORMAT_VERSION,
        });
    }
    let listed: Vec<Option<Component>> = lines.map(Component::from_name).collect();
    for c in Component::LISTED {
        if !listed.contains(&Some(c)) {
            return Err(bad("a component is missing from the TOC"));
        }
    }
    Ok(())
}
