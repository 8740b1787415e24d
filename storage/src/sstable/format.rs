//! Byte layouts of the SSTable components and the direct-IO helpers that move them.
//!
//! Integers are big-endian. Every small component is framed as
//! `magic "TSST" | component tag u8 | version u32 | body | crc32 u32` (the CRC covers all
//! bytes before it) and read whole; the index is read a block at a time, each block
//! ending in its own CRC32.
use std::path::Path;

use bytes::Bytes;
use scheduler::io::{DmaFile, MAX_IO_BYTES};

use super::clustering::{ClusteringSpan, ClusteringStats};
use super::{
    Component, SstableError, SstableStats, OLDEST_READABLE_FORMAT_VERSION, SSTABLE_FORMAT_VERSION,
};
use crate::model::codec::decode_rows;
use crate::model::{DecoratedKey, Mutation, Partition, Row, TableId};

const MAGIC: &[u8; 4] = b"TSST";
const HEADER_LEN: usize = 4 + 1 + 4;

/// First line of a TOC.
pub(super) const TOC_HEADER: &str = "tessera-sstable";

pub(super) fn tag(component: Component) -> u8 {
    match component {
        Component::Data => 1,
        Component::CompressionInfo => 2,
        Component::Index => 3,
        Component::Summary => 4,
        Component::Filter => 5,
        Component::Statistics => 6,
        Component::Toc => 7,
    }
}

/// Starts a framed component body.
pub(super) fn frame_start(component: Component) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.push(tag(component));
    out.extend_from_slice(&SSTABLE_FORMAT_VERSION.to_be_bytes());
    out
}

/// Ends a framed component: appends the CRC of everything so far.
pub(super) fn frame_end(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Verifies a framed component and returns a reader over its body.
pub(super) fn unframe(component: Component, bytes: &[u8]) -> Result<Reader<'_>, SstableError> {
    let Some(body_end) = bytes.len().checked_sub(4).filter(|&e| e >= HEADER_LEN) else {
        return Err(SstableError::malformed(component, 0, "file too short"));
    };
    verify_crc(component, 0, &bytes[..body_end], &bytes[body_end..])?;
    if &bytes[..4] != MAGIC || bytes[4] != tag(component) {
        return Err(SstableError::malformed(component, 0, "bad magic or tag"));
    }
    let version = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
    if !(OLDEST_READABLE_FORMAT_VERSION..=SSTABLE_FORMAT_VERSION).contains(&version) {
        return Err(SstableError::UnsupportedVersion {
            component,
            version,
            supported: SSTABLE_FORMAT_VERSION,
        });
    }
    Ok(Reader {
        component,
        version,
        bytes: &bytes[..body_end],
        offset: HEADER_LEN,
    })
}

/// Checks `stored` (4 bytes) against the CRC32 of `data`.
pub(super) fn verify_crc(
    component: Component,
    offset: u64,
    data: &[u8],
    stored: &[u8],
) -> Result<(), SstableError> {
    let stored: [u8; 4] = stored
        .try_into()
        .map_err(|_| SstableError::malformed(component, offset, "checksum truncated"))?;
    let stored = u32::from_be_bytes(stored);
    let computed = crc32fast::hash(data);
    if stored != computed {
        return Err(SstableError::ChecksumMismatch {
            component,
            offset,
            stored,
            computed,
        });
    }
    Ok(())
}

/// A bounds-checked cursor over verified bytes.
pub(super) struct Reader<'a> {
    component: Component,
    /// The format version of the component (the current one when unframed).
    version: u32,
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(component: Component, bytes: &'a [u8]) -> Self {
        Reader {
            component,
            version: SSTABLE_FORMAT_VERSION,
            bytes,
            offset: 0,
        }
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], SstableError> {
        let end = self
            .offset
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(SstableError::malformed(
                self.component,
                self.offset as u64,
                format!("{field} truncated"),
            ));
        };
        let out = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(out)
    }

    pub(super) fn u8(&mut self, field: &str) -> Result<u8, SstableError> {
        Ok(self.take(1, field)?[0])
    }

    pub(super) fn u32(&mut self, field: &str) -> Result<u32, SstableError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn u64(&mut self, field: &str) -> Result<u64, SstableError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_be_bytes(a))
    }

    pub(super) fn i64(&mut self, field: &str) -> Result<i64, SstableError> {
        Ok(self.u64(field)? as i64)
    }

    /// `n` big-endian u64s in one bounds check.
    pub(super) fn u64s(&mut self, n: usize, field: &str) -> Result<Vec<u64>, SstableError> {
        let len = n.checked_mul(8).ok_or_else(|| {
            SstableError::malformed(self.component, self.offset as u64, "count overflows")
        })?;
        let bytes = self.take(len, field)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("chunks of 8")))
            .collect())
    }

    pub(super) fn bytes(&mut self, field: &str) -> Result<&'a [u8], SstableError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }

    pub(super) fn key(&mut self) -> Result<DecoratedKey, SstableError> {
        let token = self.i64("token")?;
        let key = Bytes::copy_from_slice(self.bytes("partition key")?);
        Ok(DecoratedKey { token, key })
    }

    /// A count whose elements take at least `min_each` bytes: rejects counts the
    /// remaining bytes cannot hold, so a bad count never drives a huge allocation.
    pub(super) fn count(&mut self, field: &str, min_each: usize) -> Result<usize, SstableError> {
        let n = self.u32(field)? as usize;
        if n.saturating_mul(min_each) > self.remaining() {
            return Err(SstableError::malformed(
                self.component,
                self.offset as u64,
                format!("{field} {n} exceeds the bytes left"),
            ));
        }
        Ok(n)
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub(super) fn finish(&self) -> Result<(), SstableError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(SstableError::malformed(
                self.component,
                self.offset as u64,
                format!("{n} trailing bytes"),
            )),
        }
    }
}

pub(super) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(super) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends `values` big-endian, a `TaskQuota` tick every few KiB: filters and chunk
/// tables of large SSTables are megabytes.
pub(super) async fn put_u64s(out: &mut Vec<u8>, values: &[u64]) {
    let mut quota = scheduler::TaskQuota::new();
    for slice in values.chunks(1024) {
        for &v in slice {
            out.extend_from_slice(&v.to_be_bytes());
        }
        quota.tick().await;
    }
}

/// Bytes [`put_key`] writes besides the key's own: its token and length.
const KEY_FIXED_BYTES: usize = 8 + 4;

pub(super) fn put_key(out: &mut Vec<u8>, key: &DecoratedKey) {
    out.extend_from_slice(&key.token.to_be_bytes());
    put_len_bytes(out, &key.key);
}

pub(super) fn put_len_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("keys are far below 4 GiB");
    put_u32(out, len);
    out.extend_from_slice(bytes);
}

/// The table id written into partition headers: an SSTable belongs to one table, so the
/// mutation codec's table field carries nothing.
const NO_TABLE: TableId = uuid::Uuid::nil();

/// A partition's header payload: the mutation codec's encoding of everything but the rows
/// (key, partition tombstone, static row, range tombstones).
pub(super) fn encode_partition_header(key: &DecoratedKey, partition: &Partition) -> Vec<u8> {
    let m = Mutation {
        table: NO_TABLE,
        key: key.clone(),
        partition_deletion: partition.deletion,
        static_row: partition.static_row.as_deref().cloned(),
        rows: Vec::new(),
        range_tombstones: partition.range_tombstones.clone(),
    };
    m.encode()
}

/// Decodes a header payload of [`encode_partition_header`] found at `position`: the key
/// and the partition without rows.
pub(super) fn decode_partition_header(
    position: u64,
    bytes: &[u8],
) -> Result<(DecoratedKey, Partition), SstableError> {
    let m = Mutation::decode(bytes).map_err(|source| SstableError::Decode { position, source })?;
    if !m.rows.is_empty() {
        return Err(SstableError::malformed(
            Component::Data,
            position,
            "partition header holds rows",
        ));
    }
    let mut partition = Partition::new();
    partition.apply(&m);
    Ok((m.key, partition))
}

/// Decodes a row block's payload (`rows u32 × (clustering bytes, row)`) found at
/// `position`; the rows must be in strictly increasing clustering order.
pub(super) fn decode_row_block(
    position: u64,
    bytes: &[u8],
) -> Result<Vec<(Bytes, Row)>, SstableError> {
    let rows = decode_rows(bytes).map_err(|source| SstableError::Decode { position, source })?;
    if rows.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(SstableError::malformed(
            Component::Data,
            position,
            "row block out of clustering order",
        ));
    }
    Ok(rows)
}

/// One entry of a partition's clustering index: a row block's first and last clustering
/// keys and where the block (its length prefix) is in the data stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RowBlockEntry {
    pub first: Bytes,
    pub last: Bytes,
    pub position: u64,
    pub len: u32,
}

/// A clustering index payload: `blocks u32 × (first bytes | last bytes | position u64 |
/// length u32)`.
pub(super) fn encode_clustering_index(blocks: &[RowBlockEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, blocks.len() as u32);
    for b in blocks {
        put_len_bytes(&mut out, &b.first);
        put_len_bytes(&mut out, &b.last);
        put_u64(&mut out, b.position);
        put_u32(&mut out, b.len);
    }
    out
}

/// Decodes a clustering index payload found at `position`, checking that its blocks are
/// in clustering order and data order.
pub(super) fn decode_clustering_index(
    position: u64,
    bytes: &[u8],
) -> Result<Vec<RowBlockEntry>, SstableError> {
    let mut r = Reader::new(Component::Data, bytes);
    let n = r.count("clustering index entries", 20)?;
    let mut blocks = Vec::with_capacity(n);
    for _ in 0..n {
        blocks.push(RowBlockEntry {
            first: Bytes::copy_from_slice(r.bytes("first clustering key")?),
            last: Bytes::copy_from_slice(r.bytes("last clustering key")?),
            position: r.u64("row block position")?,
            len: r.u32("row block length")?,
        });
    }
    r.finish()?;
    let ordered = blocks.iter().all(|b| b.first <= b.last && b.len > 4)
        && blocks.windows(2).all(|w| {
            w[0].last < w[1].first && w[0].position + u64::from(w[0].len) <= w[1].position
        });
    if !ordered || n < 2 {
        return Err(SstableError::malformed(
            Component::Data,
            position,
            "clustering index out of order",
        ));
    }
    Ok(blocks)
}

pub(super) fn encode_stats(stats: &SstableStats, clustering: &ClusteringStats) -> Vec<u8> {
    let mut out = frame_start(Component::Statistics);
    put_u64(&mut out, stats.partition_count);
    for v in [
        stats.min_timestamp,
        stats.max_timestamp,
        stats.min_token,
        stats.max_token,
    ] {
        out.push(u8::from(v.is_some()));
        put_u64(&mut out, v.unwrap_or(0) as u64);
    }
    put_u64(&mut out, stats.uncompressed_bytes);
    put_u64(&mut out, stats.data_bytes);
    put_u32(&mut out, stats.level);
    for v in [stats.min_local_deletion_time, stats.max_local_deletion_time] {
        out.push(u8::from(v.is_some()));
        put_u32(&mut out, v.unwrap_or(0) as u32);
    }
    put_u64(&mut out, stats.cell_count);
    put_u64(&mut out, stats.tombstone_count);
    put_u64(&mut out, stats.created_at_secs as u64);
    out.push(u8::from(stats.replay_floor.is_some()));
    let floor = stats.replay_floor.unwrap_or_default();
    put_u64(&mut out, floor.segment_id);
    put_u64(&mut out, floor.offset);
    encode_clustering(&mut out, clustering);
    frame_end(out)
}

/// Flags of the clustering statistics (format 4).
const PARTITION_DELETIONS: u8 = 1;
const STATIC_ROWS: u8 = 2;
const SPAN: u8 = 4;
const SPAN_BOUNDED: u8 = 8;

fn encode_clustering(out: &mut Vec<u8>, clustering: &ClusteringStats) {
    let mut flags = 0;
    if clustering.partition_deletions {
        flags |= PARTITION_DELETIONS;
    }
    if clustering.static_rows {
        flags |= STATIC_ROWS;
    }
    if let Some(span) = &clustering.span {
        flags |= SPAN;
        if span.max.is_some() {
            flags |= SPAN_BOUNDED;
        }
    }
    out.push(flags);
    if let Some(span) = &clustering.span {
        put_bytes(out, &span.min);
        if let Some(max) = &span.max {
            put_bytes(out, max);
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(
        out,
        u32::try_from(bytes.len()).expect("clustering keys are far below 4 GiB"),
    );
    out.extend_from_slice(bytes);
}

fn decode_clustering(r: &mut Reader<'_>) -> Result<ClusteringStats, SstableError> {
    let flags = r.u8("clustering flags")?;
    if flags & !(PARTITION_DELETIONS | STATIC_ROWS | SPAN | SPAN_BOUNDED) != 0
        || (flags & SPAN == 0 && flags & SPAN_BOUNDED != 0)
    {
        return Err(SstableError::malformed(
            Component::Statistics,
            0,
            "bad clustering flags",
        ));
    }
    let span = if flags & SPAN != 0 {
        let min = Bytes::copy_from_slice(r.bytes("clustering min")?);
        let max = if flags & SPAN_BOUNDED != 0 {
            Some(Bytes::copy_from_slice(r.bytes("clustering max")?))
        } else {
            None
        };
        Some(ClusteringSpan { min, max })
    } else {
        None
    };
    Ok(ClusteringStats {
        partition_deletions: flags & PARTITION_DELETIONS != 0,
        static_rows: flags & STATIC_ROWS != 0,
        span,
    })
}

fn optional<T>(present: u8, value: T) -> Result<Option<T>, SstableError> {
    match present {
        0 => Ok(None),
        1 => Ok(Some(value)),
        _ => Err(SstableError::malformed(
            Component::Statistics,
            0,
            "bad flag",
        )),
    }
}

/// The statistics, and the clustering statistics when the format records them (4 on).
pub(super) fn decode_stats(
    bytes: &[u8],
) -> Result<(SstableStats, Option<ClusteringStats>), SstableError> {
    let mut r = unframe(Component::Statistics, bytes)?;
    let partition_count = r.u64("partition count")?;
    let mut opts = [None; 4];
    for slot in &mut opts {
        let present = r.u8("presence")?;
        *slot = optional(present, r.i64("statistic")?)?;
    }
    let uncompressed_bytes = r.u64("uncompressed bytes")?;
    let data_bytes = r.u64("data bytes")?;
    let level = r.u32("level")?;
    let mut deletion_times = [None; 2];
    for slot in &mut deletion_times {
        let present = r.u8("presence")?;
        *slot = optional(present, r.u32("local deletion time")? as i32)?;
    }
    let stats = SstableStats {
        partition_count,
        min_timestamp: opts[0],
        max_timestamp: opts[1],
        min_token: opts[2],
        max_token: opts[3],
        uncompressed_bytes,
        data_bytes,
        level,
        min_local_deletion_time: deletion_times[0],
        max_local_deletion_time: deletion_times[1],
        cell_count: r.u64("cell count")?,
        tombstone_count: r.u64("tombstone count")?,
        created_at_secs: r.i64("creation time")?,
        replay_floor: {
            let present = r.u8("presence")?;
            let floor = crate::commitlog::ReplayPosition {
                segment_id: r.u64("replay floor segment")?,
                offset: r.u64("replay floor offset")?,
            };
            optional(present, floor)?
        },
    };
    let clustering = if r.version >= 4 {
        Some(decode_clustering(&mut r)?)
    } else {
        None
    };
    r.finish()?;
    Ok((stats, clustering))
}

/// Where the compressed chunks of `Data.db` are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CompressionInfo {
    /// Uncompressed bytes per chunk (the last chunk may hold fewer).
    pub chunk_size: u64,
    /// Length of the uncompressed stream.
    pub uncompressed_len: u64,
    /// Offset of each chunk in `Data.db`, plus the file's length at the end.
    pub offsets: Vec<u64>,
}

impl CompressionInfo {
    /// Encodes the chunk table (megabytes for a large SSTable: in quota slices).
    pub(super) async fn encode(&self) -> Vec<u8> {
        let mut out = frame_start(Component::CompressionInfo);
        out.reserve(20 + self.offsets.len() * 8 + 4);
        put_u64(&mut out, self.chunk_size);
        put_u64(&mut out, self.uncompressed_len);
        put_u32(&mut out, self.offsets.len() as u32);
        put_u64s(&mut out, &self.offsets).await;
        frame_end(out)
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<CompressionInfo, SstableError> {
        let c = Component::CompressionInfo;
        let mut r = unframe(c, bytes)?;
        let chunk_size = r.u64("chunk size")?;
        let uncompressed_len = r.u64("uncompressed length")?;
        let n = r.count("chunk offsets", 8)?;
        let offsets = r.u64s(n, "chunk offsets")?;
        r.finish()?;
        let chunks = uncompressed_len.div_ceil(chunk_size.max(1));
        let sorted = offsets.windows(2).all(|w| w[0] + 4 <= w[1]);
        if chunk_size == 0 || offsets.len() as u64 != chunks + 1 || !sorted {
            return Err(SstableError::malformed(c, 0, "inconsistent chunk table"));
        }
        Ok(CompressionInfo {
            chunk_size,
            uncompressed_len,
            offsets,
        })
    }
}

/// One summary entry: an index block and the first key in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SummaryEntry {
    pub first_key: DecoratedKey,
    pub offset: u64,
    pub len: u32,
}

/// Encodes the summary, sized exactly up front and a `TaskQuota` tick every
/// few entries: the summary of a multi-GiB SSTable is megabytes, and growing
/// it by doubling copied it into fresh memory whose page faults (huge pages
/// zeroed whole) held the shard for ~10 ms at the end of a large compaction.
pub(super) async fn encode_summary(entries: &[SummaryEntry]) -> Vec<u8> {
    let body: usize = entries
        .iter()
        .map(|e| KEY_FIXED_BYTES + e.first_key.key.len() + 8 + 4)
        .sum();
    let mut out = frame_start(Component::Summary);
    out.reserve_exact(4 + body + 4);
    put_u32(&mut out, entries.len() as u32);
    let mut quota = scheduler::TaskQuota::new();
    for e in entries {
        put_key(&mut out, &e.first_key);
        put_u64(&mut out, e.offset);
        put_u32(&mut out, e.len);
        quota.tick().await;
    }
    frame_end(out)
}

/// Decodes a summary. Its keys share one buffer: a large SSTable's summary
/// has tens of thousands of entries, and with an allocation per key,
/// dropping the summaries of a compaction's inputs freed them all in one
/// burst that held the shard ~5 ms.
pub(super) fn decode_summary(bytes: &[u8]) -> Result<Vec<SummaryEntry>, SstableError> {
    let mut r = unframe(Component::Summary, bytes)?;
    let n = r.count("summary entries", 24)?;
    let mut parsed = Vec::with_capacity(n);
    let mut key_bytes = Vec::new();
    for _ in 0..n {
        let token = r.i64("token")?;
        let key = r.bytes("partition key")?;
        let start = key_bytes.len();
        key_bytes.extend_from_slice(key);
        let offset = r.u64("block offset")?;
        let len = r.u32("block length")?;
        parsed.push((token, start..key_bytes.len(), offset, len));
    }
    r.finish()?;
    let keys = Bytes::from(key_bytes);
    Ok(parsed
        .into_iter()
        .map(|(token, range, offset, len)| SummaryEntry {
            first_key: DecoratedKey {
                token,
                key: keys.slice(range),
            },
            offset,
            len,
        })
        .collect())
}

/// An `Index.db` entry: a partition's key, the data position of its header, and the
/// data position of its clustering index (0: none, the partition has at most one row
/// block; a header always precedes a clustering index, so 0 is never one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IndexEntry {
    pub key: DecoratedKey,
    pub position: u64,
    pub clustering_index: u64,
}

/// An index block: `count u32 | count × (key, data position u64, clustering index
/// position u64) | crc32`.
pub(super) fn encode_index_block(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, entries.len() as u32);
    for e in entries {
        put_key(&mut out, &e.key);
        put_u64(&mut out, e.position);
        put_u64(&mut out, e.clustering_index);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

pub(super) fn decode_index_block(
    offset: u64,
    bytes: &[u8],
) -> Result<Vec<IndexEntry>, SstableError> {
    let c = Component::Index;
    let Some(body_end) = bytes.len().checked_sub(4) else {
        return Err(SstableError::malformed(c, offset, "index block too short"));
    };
    verify_crc(c, offset, &bytes[..body_end], &bytes[body_end..])?;
    let mut r = Reader::new(c, &bytes[..body_end]);
    let n = r.count("index entries", 28)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push(IndexEntry {
            key: r.key()?,
            position: r.u64("data position")?,
            clustering_index: r.u64("clustering index position")?,
        });
    }
    r.finish()?;
    Ok(entries)
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SstableError {
    SstableError::io(op, path)
}

/// Opens `path`, creating it empty (truncating any leftover of an interrupted write).
pub(super) async fn create_file(path: &Path) -> Result<DmaFile, SstableError> {
    let file = DmaFile::open_or_create(path)
        .await
        .map_err(io_err("create", path))?;
    file.truncate(0).await.map_err(io_err("truncate", path))?;
    Ok(file)
}

/// Writes `bytes` at `pos` (aligned), padding the tail to the alignment with zeroes.
pub(super) async fn write_padded(
    file: &DmaFile,
    path: &Path,
    mut pos: u64,
    bytes: &[u8],
) -> Result<(), SstableError> {
    let align = file.alignment() as usize;
    for piece in bytes.chunks(MAX_IO_BYTES) {
        let len = piece.len().div_ceil(align) * align;
        let mut buffer = file.alloc_buffer(len);
        buffer.as_bytes_mut()[..piece.len()].copy_from_slice(piece);
        file.write_at(buffer, pos)
            .await
            .map_err(io_err("write", path))?;
        pos += len as u64;
    }
    Ok(())
}

/// Sets the file's true length (dropping padding) and makes it durable.
pub(super) async fn seal_file(file: DmaFile, path: &Path, len: u64) -> Result<(), SstableError> {
    file.truncate(len).await.map_err(io_err("truncate", path))?;
    file.fdatasync().await.map_err(io_err("fdatasync", path))?;
    file.close().await.map_err(io_err("close", path))
}

/// Writes a whole small component durably.
pub(super) async fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SstableError> {
    let file = create_file(path).await?;
    write_padded(&file, path, 0, bytes).await?;
    seal_file(file, path, bytes.len() as u64).await
}

/// Reads exactly `len` bytes at any `pos` with aligned direct reads.
pub(super) async fn read_span(
    file: &DmaFile,
    path: &Path,
    component: Component,
    pos: u64,
    len: usize,
) -> Result<Vec<u8>, SstableError> {
    let align = file.alignment();
    let start = pos - pos % align;
    let end = (pos + len as u64).div_ceil(align) * align;
    let mut buf = Vec::with_capacity((end - start) as usize);
    let mut at = start;
    while at < end {
        let want = ((end - at) as usize).min(MAX_IO_BYTES);
        let got = file.read_at(at, want).await.map_err(io_err("read", path))?;
        let short = got.len() < want;
        buf.extend_from_slice(&got);
        at += want as u64;
        if short {
            break;
        }
    }
    let skip = (pos - start) as usize;
    if buf.len() < skip + len {
        return Err(SstableError::malformed(
            component,
            pos,
            "file shorter than expected",
        ));
    }
    buf.truncate(skip + len);
    buf.drain(..skip);
    Ok(buf)
}

/// Reads a whole component file (missing file: `Io` with `NotFound`).
pub(super) async fn read_file(path: &Path, component: Component) -> Result<Vec<u8>, SstableError> {
    let file = DmaFile::open(path).await.map_err(io_err("open", path))?;
    let size = file.file_size().await.map_err(io_err("stat", path))?;
    let bytes = read_span(&file, path, component, 0, size as usize).await;
    file.close().await.map_err(io_err("close", path))?;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary is sized exactly before it is filled (no regrowth), and
    /// decodes to what was encoded.
    #[test]
    fn a_summary_is_allocated_once_and_round_trips() {
        let entries: Vec<SummaryEntry> = (0..1000_u64)
            .map(|i| SummaryEntry {
                first_key: DecoratedKey::new(i as i64 * 7919, vec![b'k'; (i % 40) as usize]),
                offset: i * 4096,
                len: 4096 + i as u32,
            })
            .collect();
        let expected = entries.clone();
        let encoded =
            crate::test_support::on_shard(move || async move { encode_summary(&entries).await });
        assert_eq!(encoded.len(), encoded.capacity(), "sized exactly");
        assert_eq!(decode_summary(&encoded).expect("decodes"), expected);
    }
}
