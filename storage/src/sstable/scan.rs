//! Reading a whole SSTable once, in order: what compaction does with each input.
//!
//! Why not [`Sstable::scan_limited`] in batches: a point read or a short scan wants the
//! few chunks that hold its keys, shared through the chunk cache; a compaction reads
//! every byte of its inputs exactly once. For that, the batch path costs far more than
//! the bytes: each batch re-reads and re-decodes the index block it starts in, every
//! length prefix and header goes through a cache lookup and a fresh buffer, every chunk
//! is read with its own IO and inserted into the cache (evicting the chunks reads
//! need), and each IO waits a round trip.
//!
//! [`SstableScanner`] instead walks `Index.db` and `Data.db` front to back with large
//! direct reads (`read_ahead_bytes` each, several chunks or index blocks per IO),
//! verifies and decompresses each chunk once into a window of the uncompressed stream,
//! and decodes partitions straight out of that window. It never touches the chunk
//! cache. Each file's next read is started (in its own task) as soon as the one before
//! is used, so the disk works while the merge decodes. Memory: per file a buffer and a
//! read in flight of `read_ahead_bytes` each, plus a window of about one chunk (more
//! while one partition spans several), so a compaction of `n` inputs holds about
//! `n × (4 × read_ahead + chunk)` bytes of input.
//!
//! Every check of the random-access path is kept: chunk CRCs and lengths, index block
//! CRCs, lengths against the data, the key in each header against the index, rows in
//! clustering order.
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use scheduler::io::{DmaFile, MAX_IO_BYTES};

use super::format::{
    decode_index_block, decode_partition_header, decode_row_block, verify_crc, IndexEntry,
};
use super::{Component, Sstable, SstableError};
use crate::model::codec::PlainSkim;
use crate::model::{DecoratedKey, Partition, Row};

/// Bounds of a scanner's read size.
pub const MIN_READ_AHEAD_BYTES: usize = 16 * 1024;

/// Walks every partition of one SSTable in ring order (see the module docs).
pub struct SstableScanner {
    sstable: Rc<Sstable>,
    index: SequentialFile,
    data: SequentialFile,
    /// The next summary entry (index block) to read.
    next_block: usize,
    /// The rest of the index block being walked.
    entries: std::vec::IntoIter<IndexEntry>,
    /// Uncompressed bytes of the data stream from `window_start` on.
    window: Vec<u8>,
    window_start: u64,
    /// The next chunk to decompress into the window.
    next_chunk: u64,
    /// Start of the partition being read: the window keeps its bytes.
    keep_from: u64,
}

impl std::fmt::Debug for SstableScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstableScanner")
            .field("generation", &self.sstable.generation())
            .field("next_block", &self.next_block)
            .field("window_start", &self.window_start)
            .finish_non_exhaustive()
    }
}

impl SstableScanner {
    /// A scanner from the first partition of `sstable`, reading `read_ahead_bytes` per
    /// IO (clamped to [`MIN_READ_AHEAD_BYTES`]..=[`MAX_IO_BYTES`]).
    pub fn new(sstable: Rc<Sstable>, read_ahead_bytes: usize) -> SstableScanner {
        let read_ahead = read_ahead_bytes.clamp(MIN_READ_AHEAD_BYTES, MAX_IO_BYTES);
        let index_len = sstable
            .summary
            .last()
            .map_or(0, |e| e.offset + u64::from(e.len));
        let data_len = sstable.compression.offsets.last().copied().unwrap_or(0);
        SstableScanner {
            index: SequentialFile::new(Component::Index, index_len, read_ahead),
            data: SequentialFile::new(Component::Data, data_len, read_ahead),
            sstable,
            next_block: 0,
            entries: Vec::new().into_iter(),
            window: Vec::new(),
            window_start: 0,
            next_chunk: 0,
            keep_from: 0,
        }
    }

    /// The SSTable scanned.
    pub fn sstable(&self) -> &Rc<Sstable> {
        &self.sstable
    }

    /// The next partition, decoded; `None` after the last.
    pub async fn next_partition(
        &mut self,
    ) -> Result<Option<(DecoratedKey, Partition)>, SstableError> {
        let Some(scanned) = self.next_scanned(Vec::new()).await? else {
            return Ok(None);
        };
        let partition = scanned.decode()?;
        Ok(Some((scanned.key, partition)))
    }

    /// The next partition as written, in `buffer` (cleared first; passing back the
    /// buffer of a partition done with saves an allocation); `None` after the last.
    pub async fn next_scanned(
        &mut self,
        buffer: Vec<u8>,
    ) -> Result<Option<ScannedPartition>, SstableError> {
        let Some(entry) = self.next_entry().await? else {
            return Ok(None);
        };
        let position = entry.position;
        self.keep_from = position;
        let header_len = self.u32_at(position).await?;
        let header = self.bytes_at(position + 4, header_len).await?;
        let mut skim = PlainSkim::default();
        let decode_error = |source| SstableError::Decode { position, source };
        let (token, key) = skim.header(header).map_err(decode_error)?;
        if token != entry.key.token || key != &entry.key.key[..] {
            return Err(SstableError::malformed(
                Component::Index,
                position,
                format!("index points at position {position} holding another key"),
            ));
        }
        let rows_start = 4 + header_len as usize;
        let mut at = position + rows_start as u64;
        let mut blocks = 0u32;
        loop {
            let len = self.u32_at(at).await?;
            if len == 0 {
                at += 4;
                break;
            }
            let block = self.bytes_at(at + 4, len).await?;
            blocks += 1;
            // A partition of several blocks has a clustering index holding data
            // positions: it is decoded and written anew, never copied, so its blocks
            // need no skim.
            if blocks == 1 && skim.plain {
                skim.row_block(block, None).map_err(decode_error)?;
            } else {
                skim.plain = false;
            }
            at += 4 + u64::from(len);
        }
        let mut bytes = buffer;
        bytes.clear();
        let from = (position - self.window_start) as usize;
        bytes.extend_from_slice(&self.window[from..from + (at - position) as usize]);
        Ok(Some(ScannedPartition {
            key: entry.key,
            position,
            bytes,
            rows_start,
            blocks,
            skim,
        }))
    }

    async fn next_entry(&mut self) -> Result<Option<IndexEntry>, SstableError> {
        loop {
            if let Some(entry) = self.entries.next() {
                return Ok(Some(entry));
            }
            let Some(block) = self.sstable.summary.get(self.next_block) else {
                return Ok(None);
            };
            let (offset, len) = (block.offset, block.len as usize);
            self.next_block += 1;
            let bytes = self
                .index
                .span(&self.sstable, |s| &s.index, offset, len)
                .await?;
            self.entries = decode_index_block(offset, bytes)?.into_iter();
        }
    }

    async fn u32_at(&mut self, position: u64) -> Result<u32, SstableError> {
        let b = self.bytes_at(position, 4).await?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `len` bytes of the uncompressed stream at `position`, which must not be before
    /// any position asked for earlier.
    async fn bytes_at(&mut self, position: u64, len: u32) -> Result<&[u8], SstableError> {
        let end = position
            .checked_add(u64::from(len))
            .filter(|&e| e <= self.sstable.compression.uncompressed_len);
        let Some(end) = end else {
            return Err(SstableError::malformed(
                Component::Data,
                position,
                format!("{len} bytes run past the end of the data"),
            ));
        };
        self.move_window_to(position)?;
        while self.window_start + (self.window.len() as u64) < end {
            self.decompress_next_chunk().await?;
        }
        let from = (position - self.window_start) as usize;
        Ok(&self.window[from..from + len as usize])
    }

    /// Drops the window's bytes before `position` (or the whole window and the chunks
    /// before `position`'s if it lies beyond).
    fn move_window_to(&mut self, position: u64) -> Result<(), SstableError> {
        if position < self.window_start {
            return Err(SstableError::malformed(
                Component::Index,
                position,
                "partitions out of data order",
            ));
        }
        let window_end = self.window_start + self.window.len() as u64;
        if position > window_end {
            let chunk_size = self.sstable.compression.chunk_size;
            self.next_chunk = position / chunk_size;
            self.window_start = self.next_chunk * chunk_size;
            self.window.clear();
        }
        let consumed =
            (position.min(self.keep_from).max(self.window_start) - self.window_start) as usize;
        // Keep the shift cheap: only once a chunk's worth is consumed.
        if consumed as u64 >= self.sstable.compression.chunk_size {
            self.window.drain(..consumed);
            self.window_start += consumed as u64;
        }
        Ok(())
    }

    /// Reads, verifies and decompresses chunk `next_chunk` onto the window's end.
    async fn decompress_next_chunk(&mut self) -> Result<(), SstableError> {
        let compression = &self.sstable.compression;
        let i = self.next_chunk as usize;
        let (Some(&start), Some(&end)) =
            (compression.offsets.get(i), compression.offsets.get(i + 1))
        else {
            return Err(SstableError::malformed(
                Component::Data,
                0,
                "chunk past the table",
            ));
        };
        let chunk_size = compression.chunk_size;
        let expected =
            (compression.uncompressed_len - self.next_chunk * chunk_size).min(chunk_size) as usize;
        let raw = self
            .data
            .span(&self.sstable, |s| &s.data, start, (end - start) as usize)
            .await?;
        let body = raw.len().saturating_sub(4);
        verify_crc(Component::Data, start, &raw[..body], &raw[body..])?;
        let old = self.window.len();
        self.window.resize(old + expected, 0);
        let decompressed = lz4_flex::block::decompress_into(&raw[..body], &mut self.window[old..]);
        if decompressed.ok() != Some(expected) {
            self.window.truncate(old);
            return Err(SstableError::malformed(
                Component::Data,
                start,
                "chunk undecompressible",
            ));
        }
        self.next_chunk += 1;
        Ok(())
    }
}

/// One partition as [`SstableScanner::next_scanned`] found it: its bytes as written
/// (header frame, row blocks, end marker; not its clustering index) and a skim of them.
pub struct ScannedPartition {
    /// The partition's key (checked against the header).
    pub key: DecoratedKey,
    /// Data position of the header, for errors.
    position: u64,
    pub(super) bytes: Vec<u8>,
    /// Offset in `bytes` of the first row block.
    rows_start: usize,
    /// Row blocks.
    blocks: u32,
    pub(super) skim: PlainSkim,
}

impl std::fmt::Debug for ScannedPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScannedPartition")
            .field("key", &self.key)
            .field("position", &self.position)
            .field("len", &self.bytes.len())
            .field("skim", &self.skim)
            .finish_non_exhaustive()
    }
}

impl ScannedPartition {
    /// Whether a compaction may write these bytes unchanged
    /// ([`super::SstableWriter::add_copied_partition`]) when no other input holds the
    /// key: the partition is plain (no tombstone, no TTL, no empty row, so compacting
    /// it changes nothing), not empty, and has one row block at most (no clustering index, whose
    /// data positions would move).
    pub fn is_copyable(&self) -> bool {
        self.skim.plain && self.skim.rows > 0 && self.blocks <= 1
    }

    /// The partition decoded.
    pub fn decode(&self) -> Result<Partition, SstableError> {
        let bytes = &self.bytes;
        let malformed = |at: usize, reason: &str| {
            SstableError::malformed(Component::Data, self.position + at as u64, reason)
        };
        let header = bytes
            .get(4..self.rows_start)
            .ok_or_else(|| malformed(0, "partition header out of its bytes"))?;
        let (_, mut partition) = decode_partition_header(self.position, header)?;
        let mut at = self.rows_start;
        let mut rows: Vec<(Bytes, Row)> = Vec::new();
        loop {
            let len = read_u32(bytes, at).ok_or_else(|| malformed(at, "row block truncated"))?;
            if len == 0 {
                break;
            }
            let block = bytes
                .get(at + 4..at + 4 + len as usize)
                .ok_or_else(|| malformed(at, "row block truncated"))?;
            let decoded = decode_row_block(self.position + at as u64, block)?;
            if let (Some(last), Some(first)) = (rows.last(), decoded.first()) {
                if last.0 >= first.0 {
                    return Err(malformed(at, "row blocks out of clustering order"));
                }
            }
            rows.extend(decoded);
            at += 4 + len as usize;
        }
        // Sorted and distinct: the map is built in one pass.
        partition.rows = rows.into_iter().collect();
        Ok(partition)
    }

    /// The buffer, for the next [`SstableScanner::next_scanned`].
    pub fn into_buffer(self) -> Vec<u8> {
        self.bytes
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A forward-only reader of one component: spans asked for in increasing order are
/// served from a buffer filled by reads of `read_ahead` bytes.
struct SequentialFile {
    component: Component,
    /// The component's length: reads stop there.
    len: u64,
    read_ahead: usize,
    buffer: Vec<u8>,
    /// File offset of `buffer[0]` (aligned).
    buffer_start: u64,
    /// The read after the buffer, started when the buffer was filled, so the disk
    /// works while the merge decodes.
    prefetch: Option<Prefetch>,
}

/// A read running in its own task: file offset and the bytes it asked for.
struct Prefetch {
    at: u64,
    want: u64,
    read: Pin<Box<dyn Future<Output = std::io::Result<Vec<u8>>>>>,
}

/// Which file of an SSTable a [`SequentialFile`] reads.
type FileOf = fn(&Sstable) -> &DmaFile;

impl SequentialFile {
    fn new(component: Component, len: u64, read_ahead: usize) -> SequentialFile {
        SequentialFile {
            component,
            len,
            read_ahead,
            buffer: Vec::new(),
            buffer_start: 0,
            prefetch: None,
        }
    }

    /// `len` bytes at `pos` of `file_of(sstable)`; `pos` must not be before any span
    /// asked for earlier.
    async fn span(
        &mut self,
        sstable: &Rc<Sstable>,
        file_of: FileOf,
        pos: u64,
        len: usize,
    ) -> Result<&[u8], SstableError> {
        let end = pos
            .checked_add(len as u64)
            .filter(|&e| e <= self.len && pos >= self.buffer_start);
        let Some(end) = end else {
            return Err(SstableError::malformed(
                self.component,
                pos,
                format!("{len} bytes out of the file's order or length"),
            ));
        };
        let buffer_end = self.buffer_start + self.buffer.len() as u64;
        if end > buffer_end {
            self.refill(sstable, file_of, pos, end).await?;
        }
        let from = (pos - self.buffer_start) as usize;
        Ok(&self.buffer[from..from + len])
    }

    /// Keeps the buffered bytes from `pos` on and reads on until `end` is buffered,
    /// at least `read_ahead` bytes past what was buffered; then starts the next read.
    async fn refill(
        &mut self,
        sstable: &Rc<Sstable>,
        file_of: FileOf,
        pos: u64,
        end: u64,
    ) -> Result<(), SstableError> {
        let align = file_of(sstable).alignment();
        let buffer_end = self.buffer_start + self.buffer.len() as u64;
        let keep_from = (pos - pos % align).max(self.buffer_start);
        if keep_from >= buffer_end {
            self.buffer.clear();
            self.buffer_start = pos - pos % align;
        } else {
            self.buffer
                .drain(..(keep_from - self.buffer_start) as usize);
            self.buffer_start = keep_from;
        }
        let path = || self.component.path(sstable.dir(), sstable.generation());
        let mut at = self.buffer_start + self.buffer.len() as u64;
        let want_end = end.max(at + self.read_ahead as u64).min(self.len);
        while at < want_end {
            let (want, got) = match self.prefetch.take().filter(|p| p.at == at) {
                Some(prefetch) => (prefetch.want, prefetch.read.await),
                None => {
                    let want = ((want_end - at).div_ceil(align) * align).min(MAX_IO_BYTES as u64);
                    (want, file_of(sstable).read_at(at, want as usize).await)
                }
            };
            let got = got.map_err(SstableError::io("read", &path()))?;
            let got_len = got.len() as u64;
            if self.buffer.is_empty() {
                self.buffer = got;
            } else {
                self.buffer.extend_from_slice(&got);
            }
            at += got_len;
            if got_len < want {
                break;
            }
        }
        if at < end {
            return Err(SstableError::malformed(
                self.component,
                at,
                "file shorter than expected",
            ));
        }
        if at < self.len {
            let want = ((self.len - at).min(self.read_ahead as u64).div_ceil(align) * align)
                .min(MAX_IO_BYTES as u64);
            let owner = Rc::clone(sstable);
            let read = scheduler::spawn_local_task(async move {
                file_of(&owner).read_at(at, want as usize).await
            });
            self.prefetch = Some(Prefetch {
                at,
                want,
                read: Box::pin(read),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The scanner against the random-access reader on the same files; damage is
    //! covered by the bit-flip test in `sstable::tests`, which reads through both.
    use super::*;
    use crate::model::PartitionRange;
    use crate::sstable::tests::{random_memtable, scan_whole, small_options, write};
    use crate::sstable::{ChunkCache, SstableOptions};
    use crate::test_support::on_shard;

    #[test]
    fn scanning_matches_the_full_scan_for_every_read_size_and_chunk_size() {
        let dir = crate::test_support::test_dir("sstable-scan-tests", "sizes");
        on_shard(move || async move {
            let memtable = random_memtable(17, 3000, 700);
            let options = [small_options(), SstableOptions::default()];
            for (generation, options) in (1..).zip(options) {
                write(&dir, generation, &memtable, options).await;
                let sstable = Rc::new(Sstable::open(&dir, generation).await.expect("open"));
                let expected = sstable.scan(&PartitionRange::full()).await.expect("scan");
                assert!(expected.len() > 500);
                for read_ahead in [0, 20_000, MAX_IO_BYTES] {
                    let got = scan_whole(&sstable, read_ahead).await.expect("scanner");
                    assert_eq!(got, expected, "read ahead {read_ahead}");
                }
                let before = (ChunkCache::shard().stats(), sstable.data_chunks_read());
                scan_whole(&sstable, 0).await.expect("scanner");
                let after = (ChunkCache::shard().stats(), sstable.data_chunks_read());
                assert_eq!(before, after, "the chunk cache is left alone");
            }
        });
    }
}
