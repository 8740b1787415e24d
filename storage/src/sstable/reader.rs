//! Reading an SSTable: open verifies the TOC and loads the small components (filter,
//! summary, chunk table, statistics); lookups read one index block and the data chunks
//! holding the partition, verifying every checksum on the way.
use std::cell::RefCell;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use scheduler::io::DmaFile;

use super::bloom::Bloom;
use super::format::{
    decode_index_block, decode_partition, decode_stats, decode_summary, read_file, read_span,
    verify_crc, CompressionInfo, SummaryEntry, TOC_HEADER,
};
use super::{Component, SstableError, SstableStats, SSTABLE_FORMAT_VERSION};
use crate::model::{DecoratedKey, Partition, PartitionRange};

/// An open, complete SSTable.
pub struct Sstable {
    dir: PathBuf,
    generation: u64,
    data: DmaFile,
    index: DmaFile,
    compression: CompressionInfo,
    summary: Vec<SummaryEntry>,
    bloom: Bloom,
    stats: SstableStats,
    /// The last data chunk decompressed (sequential reads hit it).
    last_chunk: RefCell<Option<(u64, Rc<[u8]>)>>,
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
    /// Opens SSTable `generation` in `dir`; fails with [`SstableError::Incomplete`] if it
    /// has no TOC, and with a checksum or format error if any component read is damaged.
    pub async fn open(dir: &Path, generation: u64) -> Result<Sstable, SstableError> {
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
        let stats =
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
            last_chunk: RefCell::new(None),
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

    /// Whether the SSTable may hold `key` (bloom filter: no false negatives).
    pub fn may_contain(&self, key: &DecoratedKey) -> bool {
        self.bloom.may_contain(&key.key)
    }

    /// The partition with `key`, if this SSTable holds it.
    pub async fn read_partition(
        &self,
        key: &DecoratedKey,
    ) -> Result<Option<Partition>, SstableError> {
        if !self.may_contain(key) {
            return Ok(None);
        }
        let block = self.summary.partition_point(|e| e.first_key <= *key);
        let Some(entry) = block.checked_sub(1).map(|b| &self.summary[b]) else {
            return Ok(None);
        };
        let entries = self.read_index_block(entry).await?;
        let Ok(found) = entries.binary_search_by(|(k, _)| k.cmp(key)) else {
            return Ok(None);
        };
        let position = entries[found].1;
        let (stored, partition) = self.read_partition_at(position).await?;
        if stored != *key {
            return Err(SstableError::malformed(
                Component::Index,
                entry.offset,
                format!("index points at position {position} holding another key"),
            ));
        }
        Ok(Some(partition))
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
            for (key, position) in self.read_index_block(entry).await? {
                if !range.after_start(&key) {
                    continue;
                }
                if !range.before_end(&key) {
                    return Ok(out);
                }
                let (stored, partition) = self.read_partition_at(position).await?;
                if stored != key {
                    return Err(SstableError::malformed(
                        Component::Index,
                        entry.offset,
                        format!("index points at position {position} holding another key"),
                    ));
                }
                out.push((key, partition));
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
    ) -> Result<Vec<(DecoratedKey, u64)>, SstableError> {
        let path = Component::Index.path(&self.dir, self.generation);
        let bytes = read_span(
            &self.index,
            &path,
            Component::Index,
            entry.offset,
            entry.len as usize,
        )
        .await?;
        decode_index_block(entry.offset, &bytes)
    }

    async fn read_partition_at(
        &self,
        position: u64,
    ) -> Result<(DecoratedKey, Partition), SstableError> {
        let len_bytes = self.read_uncompressed(position, 4).await?;
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let payload = self.read_uncompressed(position + 4, len as usize).await?;
        decode_partition(position, &payload)
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
        if let Some((cached, bytes)) = self.last_chunk.borrow().as_ref() {
            if *cached == index {
                return Ok(Rc::clone(bytes));
            }
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
        *self.last_chunk.borrow_mut() = Some((index, Rc::clone(&bytes)));
        Ok(bytes)
    }
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
    if version != SSTABLE_FORMAT_VERSION {
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
