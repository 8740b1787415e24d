//! The commitlog's on-disk format (version 1): the segment header, the
//! block header with its checksummed sync marker, and entry frames. Pure
//! encoding and decoding, no IO; `DESIGN.md` ("Commitlog") has the layout.
//!
//! Every integer is little-endian.

/// First bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TSRCLOG\0";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the segment header (inside the segment's first block).
const SEGMENT_HEADER_BYTES: usize = 45;
/// Bytes of each data block's header.
pub const BLOCK_HEADER_BYTES: usize = 28;
/// Bytes before each entry's payload: length and CRC32.
pub const FRAME_HEADER_BYTES: usize = 8;
/// `first_entry` of a block in which no entry starts.
pub const NO_ENTRY: u16 = u16::MAX;
/// The largest block the `u16` block-header fields can describe.
pub const MAX_BLOCK_BYTES: usize = 32 * 1024;

/// The header in a segment's first block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub shard: u32,
    pub segment_id: u64,
    pub block_bytes: u32,
    pub segment_bytes: u64,
    /// The first segment a commitlog instance wrote after opening: the
    /// segment before it ended a previous run (maybe with a torn tail).
    pub starts_run: bool,
}

/// Why a segment header was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// No magic: not a commitlog segment at all.
    NotASegment,
    /// A segment written by a format this code does not know.
    UnknownVersion(u32),
    /// The header's checksum does not match.
    BadChecksum,
}

impl SegmentHeader {
    /// The header block (`block_bytes` long, zero-padded).
    pub fn encode(&self) -> Vec<u8> {
        let mut block = vec![0_u8; self.block_bytes as usize];
        block[0..8].copy_from_slice(&SEGMENT_MAGIC);
        block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        block[12..16].copy_from_slice(&self.shard.to_le_bytes());
        block[16..24].copy_from_slice(&self.segment_id.to_le_bytes());
        block[24..28].copy_from_slice(&self.block_bytes.to_le_bytes());
        block[28..36].copy_from_slice(&self.segment_bytes.to_le_bytes());
        block[36] = u8::from(self.starts_run);
        // 37..41 reserved (zero).
        let crc = crc32fast::hash(&block[0..41]);
        block[41..SEGMENT_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
        block
    }

    /// Decodes a header from the start of a segment file.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
        if bytes.len() < SEGMENT_HEADER_BYTES || bytes[0..8] != SEGMENT_MAGIC {
            return Err(HeaderProblem::NotASegment);
        }
        let version = le_u32(&bytes[8..12]);
        if version != FORMAT_VERSION {
            return Err(HeaderProblem::UnknownVersion(version));
        }
        if crc32fast::hash(&bytes[0..41]) != le_u32(&bytes[41..45]) {
            return Err(HeaderProblem::BadChecksum);
        }
        Ok(SegmentHeader {
            shard: le_u32(&bytes[12..16]),
            segment_id: le_u64(&bytes[16..24]),
            block_bytes: le_u32(&bytes[24..28]),
            segment_bytes: le_u64(&bytes[28..36]),
            starts_run: bytes[36] != 0,
        })
    }
}

/// The header of a data block. Its checksum covers the whole block, so a
/// valid header is the block's sync marker: the block was written whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Ties the block to this incarnation of a (maybe recycled) file.
    pub segment_id: u64,
    /// The block's own index, so a misplaced write is caught.
    pub block_index: u32,
    /// The first block of the write batch this block belongs to.
    pub batch_start: u32,
    /// Blocks `[0, durable_blocks)` were synced before this batch was written.
    pub durable_blocks: u32,
    /// Payload bytes in use (less than the capacity only in a batch's last block).
    pub used: u16,
    /// Offset in the payload where the first entry starting here begins.
    pub first_entry: u16,
}

/// What a block read from disk turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    Valid(BlockHeader),
    /// Zeroes, or a whole block left from the file's previous use.
    Unwritten,
    /// Neither: a torn write or corruption.
    Damaged,
}

impl BlockHeader {
    fn write_into(&self, block: &mut [u8]) {
        block[4..12].copy_from_slice(&self.segment_id.to_le_bytes());
        block[12..16].copy_from_slice(&self.block_index.to_le_bytes());
        block[16..20].copy_from_slice(&self.batch_start.to_le_bytes());
        block[20..24].copy_from_slice(&self.durable_blocks.to_le_bytes());
        block[24..26].copy_from_slice(&self.used.to_le_bytes());
        block[26..28].copy_from_slice(&self.first_entry.to_le_bytes());
        let crc = crc32fast::hash(&block[4..]);
        block[0..4].copy_from_slice(&crc.to_le_bytes());
    }

    fn read_from(block: &[u8]) -> BlockHeader {
        BlockHeader {
            segment_id: le_u64(&block[4..12]),
            block_index: le_u32(&block[12..16]),
            batch_start: le_u32(&block[16..20]),
            durable_blocks: le_u32(&block[20..24]),
            used: le_u16(&block[24..26]),
            first_entry: le_u16(&block[26..28]),
        }
    }
}

/// Classifies one block of segment `segment_id` found at `block_index`.
pub fn decode_block(block: &[u8], segment_id: u64, block_index: u32) -> BlockState {
    let checksum_ok =
        block.len() > BLOCK_HEADER_BYTES && crc32fast::hash(&block[4..]) == le_u32(&block[0..4]);
    if !checksum_ok {
        return if block.iter().all(|byte| *byte == 0) {
            BlockState::Unwritten
        } else {
            BlockState::Damaged
        };
    }
    let header = BlockHeader::read_from(block);
    if header.segment_id != segment_id {
        return BlockState::Unwritten;
    }
    let capacity = block.len() - BLOCK_HEADER_BYTES;
    let sane = header.block_index == block_index
        && header.batch_start <= block_index
        && usize::from(header.used) <= capacity
        && (header.first_entry == NO_ENTRY || header.first_entry <= header.used);
    if sane {
        BlockState::Valid(header)
    } else {
        BlockState::Damaged
    }
}

/// Payload bytes a block of `block_bytes` carries.
pub fn block_capacity(block_bytes: usize) -> usize {
    block_bytes - BLOCK_HEADER_BYTES
}

/// Entries laid out for one write batch: consecutive blocks starting at a
/// fresh block, the last one zero-padded. Entries may span blocks of the
/// batch but never batches, so no block is written twice.
#[derive(Debug)]
pub struct BatchLayout {
    pub segment_id: u64,
    pub start_block: u32,
    block_bytes: usize,
    /// Frames as one stream, cut into block payloads on encoding.
    stream: Vec<u8>,
    /// Stream offsets where entries start.
    entry_starts: Vec<u32>,
    /// Most stream bytes this batch may hold (the segment's room).
    capacity: usize,
}

/// The vectors of a written batch, kept so that a later batch is laid out
/// without growing new ones (a 160 KiB batch grows its stream through a
/// dozen reallocations, each a copy, on the appenders' path).
#[derive(Debug, Default)]
pub struct LayoutBuffers {
    stream: Vec<u8>,
    entry_starts: Vec<u32>,
}

impl BatchLayout {
    /// An empty batch at `start_block` of a segment of `segment_blocks` blocks.
    pub fn new(segment_id: u64, start_block: u32, segment_blocks: u32, block_bytes: usize) -> Self {
        let buffers = LayoutBuffers::default();
        Self::reusing(
            buffers,
            segment_id,
            start_block,
            segment_blocks,
            block_bytes,
        )
    }

    /// Like [`BatchLayout::new`], in the vectors of an earlier batch.
    pub fn reusing(
        buffers: LayoutBuffers,
        segment_id: u64,
        start_block: u32,
        segment_blocks: u32,
        block_bytes: usize,
    ) -> Self {
        assert!(start_block >= 1 && start_block <= segment_blocks);
        let blocks = (segment_blocks - start_block) as usize;
        let LayoutBuffers {
            mut stream,
            mut entry_starts,
        } = buffers;
        stream.clear();
        entry_starts.clear();
        BatchLayout {
            segment_id,
            start_block,
            block_bytes,
            stream,
            entry_starts,
            capacity: blocks * block_capacity(block_bytes),
        }
    }

    /// The batch's vectors, for a later batch.
    pub fn into_buffers(self) -> LayoutBuffers {
        LayoutBuffers {
            stream: self.stream,
            entry_starts: self.entry_starts,
        }
    }

    /// Adds a frame for `payload`; its segment offset, or `None` when it
    /// does not fit in the segment's remaining room.
    pub fn push(&mut self, payload: &[u8]) -> Option<u64> {
        let frame_bytes = FRAME_HEADER_BYTES + payload.len();
        if self.stream.len() + frame_bytes > self.capacity {
            return None;
        }
        let start = self.stream.len();
        let len = u32::try_from(payload.len()).ok()?;
        self.stream.extend_from_slice(&len.to_le_bytes());
        self.stream
            .extend_from_slice(&frame_crc(len, payload).to_le_bytes());
        self.stream.extend_from_slice(payload);
        self.entry_starts
            .push(u32::try_from(start).expect("a batch is smaller than a segment"));
        Some(self.segment_offset(start))
    }

    /// The segment offset of stream offset `at`.
    fn segment_offset(&self, at: usize) -> u64 {
        let capacity = block_capacity(self.block_bytes);
        let block = self.start_block as usize + at / capacity;
        (block * self.block_bytes + BLOCK_HEADER_BYTES + at % capacity) as u64
    }

    /// The segment offset the next entry pushed would get.
    pub fn next_offset(&self) -> u64 {
        self.segment_offset(self.stream.len())
    }

    pub fn is_empty(&self) -> bool {
        self.entry_starts.is_empty()
    }

    pub fn stream_bytes(&self) -> usize {
        self.stream.len()
    }

    /// Blocks the batch occupies.
    pub fn blocks(&self) -> u32 {
        let blocks = self.stream.len().div_ceil(block_capacity(self.block_bytes));
        u32::try_from(blocks).expect("a batch is smaller than a segment")
    }

    /// The batch's blocks, ready to write at `start_block`.
    #[cfg(test)]
    pub fn encode(&self, durable_blocks: u32) -> Vec<u8> {
        let mut image = vec![0_u8; self.blocks() as usize * self.block_bytes];
        self.encode_blocks_into(durable_blocks, 0, &mut image);
        image
    }

    /// Encodes the batch's blocks `first_block..` (counted from the batch's
    /// start), as many as `out` holds, into `out`, every byte of it (the
    /// last block's padding zeroed): the writer encodes straight into its
    /// direct-IO buffers, one per write, without zeroing them first.
    pub fn encode_blocks_into(&self, durable_blocks: u32, first_block: usize, out: &mut [u8]) {
        assert!(out.len().is_multiple_of(self.block_bytes));
        assert!(first_block + out.len() / self.block_bytes <= self.blocks() as usize);
        let capacity = block_capacity(self.block_bytes);
        let mut starts = self.entry_starts.iter().peekable();
        for (n, block) in out.chunks_mut(self.block_bytes).enumerate() {
            let i = first_block + n;
            let lo = i * capacity;
            let hi = (lo + capacity).min(self.stream.len());
            while starts.next_if(|start| (**start as usize) < lo).is_some() {}
            let first_entry = match starts.peek() {
                Some(start) if (**start as usize) < hi => to_u16(**start as usize - lo),
                _ => NO_ENTRY,
            };
            let (payload, padding) = block[BLOCK_HEADER_BYTES..].split_at_mut(hi - lo);
            payload.copy_from_slice(&self.stream[lo..hi]);
            padding.fill(0);
            let header = BlockHeader {
                segment_id: self.segment_id,
                block_index: self.start_block + to_u32(i),
                batch_start: self.start_block,
                durable_blocks,
                used: to_u16(hi - lo),
                first_entry,
            };
            header.write_into(block);
        }
    }
}

/// The CRC32 of a frame: over its length and payload.
pub fn frame_crc(len: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn to_u16(value: usize) -> u16 {
    u16::try_from(value).expect("block sizes fit in u16 fields")
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).expect("block counts fit in u32")
}

pub fn le_u16(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[0], bytes[1]])
}

pub fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[0..4].try_into().expect("four bytes"))
}

pub fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[0..8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let header = SegmentHeader {
            shard: 3,
            segment_id: 77,
            block_bytes: 4096,
            segment_bytes: 1 << 20,
            starts_run: true,
        };
        let mut block = header.encode();
        assert_eq!(SegmentHeader::decode(&block), Ok(header));
        block[20] ^= 1;
        assert_eq!(
            SegmentHeader::decode(&block),
            Err(HeaderProblem::BadChecksum)
        );
        block[0] = b'x';
        assert_eq!(
            SegmentHeader::decode(&block),
            Err(HeaderProblem::NotASegment)
        );
    }

    #[test]
    fn batch_blocks_carry_sync_markers_and_entry_starts() {
        let mut batch = BatchLayout::new(9, 1, 16, 512);
        let capacity = block_capacity(512);
        let first = batch.push(&[1; 600]).expect("fits");
        let second = batch.push(&[2; 10]).expect("fits");
        assert_eq!(first, 512 + BLOCK_HEADER_BYTES as u64);
        let second_stream = 608;
        assert_eq!(
            second,
            (512 * (1 + second_stream / capacity) + BLOCK_HEADER_BYTES + second_stream % capacity)
                as u64
        );
        let image = batch.encode(1);
        assert_eq!(image.len(), 2 * 512);
        let BlockState::Valid(h0) = decode_block(&image[..512], 9, 1) else {
            panic!("first block valid")
        };
        assert_eq!((h0.used as usize, h0.first_entry), (capacity, 0));
        let BlockState::Valid(h1) = decode_block(&image[512..], 9, 2) else {
            panic!("second block valid")
        };
        assert_eq!(h1.first_entry as usize, second_stream - capacity);
        assert_eq!(h1.used as usize, 626 - capacity);
        assert_eq!(decode_block(&image[512..], 10, 2), BlockState::Unwritten);
        assert_eq!(decode_block(&image[512..], 9, 3), BlockState::Damaged);
        assert_eq!(decode_block(&[0; 512], 9, 2), BlockState::Unwritten);
        let mut flipped = image[..512].to_vec();
        flipped[300] ^= 0x10;
        assert_eq!(decode_block(&flipped, 9, 1), BlockState::Damaged);
    }

    #[test]
    fn a_batch_encoded_in_pieces_over_garbage_is_the_batch_encoded_whole() {
        let mut batch = BatchLayout::new(4, 2, 64, 512);
        for i in 0..30_u8 {
            batch.push(&vec![i; 37 * usize::from(i)]).expect("fits");
        }
        let whole = batch.encode(2);
        let blocks = batch.blocks() as usize;
        let mut pieces = Vec::new();
        for first in (0..blocks).step_by(3) {
            // Buffers are not zeroed first: every byte must be written.
            let mut piece = vec![0xA5_u8; (blocks - first).min(3) * 512];
            batch.encode_blocks_into(2, first, &mut piece);
            pieces.extend(piece);
        }
        assert_eq!(pieces, whole);
    }

    #[test]
    fn a_batch_refuses_entries_past_the_segment_end() {
        let mut batch = BatchLayout::new(1, 3, 4, 512);
        assert!(batch.push(&[0; 476]).is_some());
        assert!(batch.push(&[0; 1]).is_none());
    }
}
