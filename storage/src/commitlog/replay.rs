//! Replay at open: reads every segment of this shard in id order and hands
//! each complete entry to the caller, telling a torn tail (normal after a
//! crash, silent) from damage to data that had been synced (logged and
//! counted), and leaving files that are not our segments alone.
use std::path::Path;

use scheduler::io::{self as fileio, DmaFile, MAX_IO_BYTES};

use super::format::{
    block_capacity, decode_block, frame_crc, le_u32, BlockHeader, BlockState, HeaderProblem,
    SegmentHeader, BLOCK_HEADER_BYTES, FRAME_HEADER_BYTES, MAX_BLOCK_BYTES, NO_ENTRY,
};
use super::segment::{self, SegmentName};
use super::{CommitlogError, ReplayPosition, ReplayStats};

/// What a scan of one segment found, beyond its entries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    pub segment_id: u64,
    pub starts_run: bool,
    pub last_valid: Option<u32>,
    /// The highest durable mark of any valid block.
    pub durable_blocks: u32,
    /// Blocks that were neither valid nor unwritten.
    pub damaged: Vec<u32>,
    /// Unwritten blocks followed by a valid block.
    pub holes: Vec<u32>,
    pub corrupt_entries: u64,
    pub entries: u64,
    pub payload_bytes: u64,
}

/// Feeds one segment's blocks in order and emits the complete entries.
pub struct SegmentScanner<'a, F: FnMut(ReplayPosition, &[u8])> {
    block_bytes: usize,
    scan: SegmentScan,
    /// The frame being gathered across blocks, and where it started.
    carry: Option<(u64, Vec<u8>)>,
    previous: Option<BlockHeader>,
    pending_holes: Vec<u32>,
    max_entry_bytes: usize,
    emit: &'a mut F,
}

impl<'a, F: FnMut(ReplayPosition, &[u8])> SegmentScanner<'a, F> {
    pub fn new(header: &SegmentHeader, emit: &'a mut F) -> Self {
        let block_bytes = header.block_bytes as usize;
        SegmentScanner {
            block_bytes,
            scan: SegmentScan {
                segment_id: header.segment_id,
                starts_run: header.starts_run,
                ..SegmentScan::default()
            },
            carry: None,
            previous: None,
            pending_holes: Vec::new(),
            max_entry_bytes: header.segment_bytes as usize,
            emit,
        }
    }

    /// Feeds block `index` (zero-padded if the file ended inside it).
    pub fn feed(&mut self, index: u32, block: &[u8]) {
        match decode_block(block, self.scan.segment_id, index) {
            BlockState::Valid(header) => {
                let used = usize::from(header.used);
                self.valid(
                    header,
                    &block[BLOCK_HEADER_BYTES..BLOCK_HEADER_BYTES + used],
                );
            }
            BlockState::Unwritten => {
                self.break_stream();
                self.pending_holes.push(index);
            }
            BlockState::Damaged => {
                self.break_stream();
                self.scan.damaged.push(index);
            }
        }
    }

    pub fn finish(self) -> SegmentScan {
        self.scan
    }

    fn break_stream(&mut self) {
        self.carry = None;
        self.previous = None;
    }

    fn valid(&mut self, header: BlockHeader, payload: &[u8]) {
        self.scan.holes.append(&mut self.pending_holes);
        self.scan.last_valid = Some(header.block_index);
        self.scan.durable_blocks = self.scan.durable_blocks.max(header.durable_blocks);
        let capacity = block_capacity(self.block_bytes);
        let continues = self.previous.is_some_and(|previous| {
            previous.block_index + 1 == header.block_index
                && previous.batch_start == header.batch_start
                && usize::from(previous.used) == capacity
        });
        self.previous = Some(header);
        let start = if continues && self.carry.is_some() {
            0
        } else {
            // A frame cut by damage before this block is lost with it.
            self.carry = None;
            if header.first_entry == NO_ENTRY {
                return;
            }
            usize::from(header.first_entry)
        };
        self.parse(header.block_index, payload, start);
        if usize::from(header.used) < capacity && self.carry.take().is_some() {
            // The batch ended inside a frame: its writer never does that.
            self.scan.corrupt_entries += 1;
        }
    }

    /// Parses frames from `payload[at..]`, continuing the carried one.
    fn parse(&mut self, block_index: u32, payload: &[u8], mut at: usize) {
        while at < payload.len() {
            let (start, mut bytes) = match self.carry.take() {
                Some(carried) => carried,
                None => (self.offset_of(block_index, at), Vec::new()),
            };
            take_wanted(&mut bytes, payload, &mut at);
            if bytes.len() >= FRAME_HEADER_BYTES {
                let len = le_u32(&bytes[0..4]) as usize;
                if len > self.max_entry_bytes {
                    // A length no writer produced: skip to the next block's first entry.
                    self.scan.corrupt_entries += 1;
                    return;
                }
                take_wanted(&mut bytes, payload, &mut at);
            }
            if complete(&bytes) {
                self.emit_frame(start, &bytes);
            } else {
                self.carry = Some((start, bytes));
                return;
            }
        }
    }

    fn emit_frame(&mut self, start: u64, frame: &[u8]) {
        let len = le_u32(&frame[0..4]);
        let payload = &frame[FRAME_HEADER_BYTES..];
        if frame_crc(len, payload) != le_u32(&frame[4..8]) {
            self.scan.corrupt_entries += 1;
            return;
        }
        self.scan.entries += 1;
        self.scan.payload_bytes += payload.len() as u64;
        let position = ReplayPosition {
            segment_id: self.scan.segment_id,
            offset: start,
        };
        (self.emit)(position, payload);
    }

    fn offset_of(&self, block_index: u32, at: usize) -> u64 {
        (block_index as usize * self.block_bytes + BLOCK_HEADER_BYTES + at) as u64
    }
}

/// Moves as many of the frame's missing bytes from `payload[*at..]` as it has.
fn take_wanted(bytes: &mut Vec<u8>, payload: &[u8], at: &mut usize) {
    let take = (frame_bytes_wanted(bytes) - bytes.len()).min(payload.len() - *at);
    bytes.extend_from_slice(&payload[*at..*at + take]);
    *at += take;
}

/// Total bytes the frame gathered so far will have (header first).
fn frame_bytes_wanted(bytes: &[u8]) -> usize {
    if bytes.len() < FRAME_HEADER_BYTES {
        FRAME_HEADER_BYTES
    } else {
        FRAME_HEADER_BYTES + le_u32(&bytes[0..4]) as usize
    }
}

fn complete(bytes: &[u8]) -> bool {
    bytes.len() >= FRAME_HEADER_BYTES && bytes.len() == frame_bytes_wanted(bytes)
}

/// How the damage a scan found is judged.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// Damage where data had been synced: real corruption.
    pub corrupt_blocks: u64,
    /// Damage in what may not have been synced at a run's end: a torn tail.
    pub torn_blocks: u64,
}

/// Judges a scan. `run_tail` says the segment is the last one holding data
/// of the run (process lifetime) that wrote it; only there may unsynced
/// blocks be missing or torn, since the writer syncs a segment before it
/// writes the next.
pub fn judge(scan: &SegmentScan, run_tail: bool) -> Judgement {
    let mut judgement = Judgement::default();
    let tolerated = |block: u32| run_tail && block >= scan.durable_blocks;
    for block in scan.damaged.iter().chain(&scan.holes) {
        if tolerated(*block) {
            judgement.torn_blocks += 1;
        } else {
            judgement.corrupt_blocks += 1;
        }
    }
    judgement
}

/// What replaying the directory left behind for the writer.
#[derive(Debug, Default)]
pub struct ReplayedDirectory {
    /// Segments replayed, in id order: they stay until discarded.
    pub live: Vec<u64>,
    /// The highest segment id seen in any of our files.
    pub max_segment_id: u64,
    pub stats: ReplayStats,
}

/// Replays every segment of `shard` in `dir`, calling `apply` per entry.
pub async fn replay_directory(
    dir: &Path,
    shard: u32,
    apply: &mut dyn FnMut(ReplayPosition, &[u8]),
) -> Result<ReplayedDirectory, CommitlogError> {
    let entries = fileio::list_directory(dir)
        .await
        .map_err(|e| CommitlogError::io("list directory", dir, e))?;
    let mut replayed = ReplayedDirectory::default();
    let mut segments = Vec::new();
    for entry in entries {
        match segment::parse_name(&entry.name) {
            Some(SegmentName::Segment {
                shard: s,
                segment_id,
            }) if s == shard && entry.is_file => {
                segments.push((segment_id, entry.path));
            }
            Some(SegmentName::Temporary { shard: s }) if s == shard => {
                tracing::info!(path = %entry.path.display(), "removing an unfinished commitlog segment");
                fileio::remove_file(&entry.path)
                    .await
                    .map_err(|e| CommitlogError::io("remove", &entry.path, e))?;
            }
            Some(_) => {}
            None if entry.name == fileio::PROBE_FILE_NAME => {}
            None => replayed.stats.ignored_files += 1,
        }
    }
    segments.sort();
    let mut scans = Vec::new();
    for (segment_id, path) in segments {
        replayed.max_segment_id = replayed.max_segment_id.max(segment_id);
        match replay_segment(&path, shard, segment_id, apply).await? {
            SegmentOutcome::Scanned(scan) => {
                replayed.live.push(segment_id);
                scans.push(scan);
            }
            SegmentOutcome::Abandoned => {
                tracing::info!(path = %path.display(), "removing a half-recycled commitlog segment");
                segment::remove(dir, shard, segment_id)
                    .await
                    .map_err(|e| CommitlogError::io("remove", &path, e))?;
            }
            SegmentOutcome::Unreadable => replayed.stats.unreadable_segments += 1,
        }
    }
    account(&scans, &mut replayed.stats);
    Ok(replayed)
}

/// Adds the scans' counts to `stats`, judging each segment's damage.
fn account(scans: &[SegmentScan], stats: &mut ReplayStats) {
    for (i, scan) in scans.iter().enumerate() {
        let later_in_run = scans[i + 1..]
            .iter()
            .take_while(|later| !later.starts_run)
            .any(|later| later.last_valid.is_some());
        let judgement = judge(scan, !later_in_run);
        if judgement.corrupt_blocks > 0 || scan.corrupt_entries > 0 {
            tracing::error!(
                segment = scan.segment_id,
                corrupt_blocks = judgement.corrupt_blocks,
                corrupt_entries = scan.corrupt_entries,
                damaged = ?scan.damaged,
                holes = ?scan.holes,
                "commitlog segment has damaged synced data; the entries in it are skipped"
            );
        }
        if judgement.torn_blocks > 0 {
            tracing::debug!(
                segment = scan.segment_id,
                blocks = judgement.torn_blocks,
                "torn commitlog tail"
            );
        }
        stats.segments_replayed += 1;
        stats.entries_replayed += scan.entries;
        stats.bytes_replayed += scan.payload_bytes;
        stats.corrupt_blocks += judgement.corrupt_blocks;
        stats.torn_blocks += judgement.torn_blocks;
        stats.corrupt_entries += scan.corrupt_entries;
    }
}

enum SegmentOutcome {
    Scanned(SegmentScan),
    /// Named as ours but its header names another segment: a recycle was
    /// interrupted, and what it holds had been discarded.
    Abandoned,
    /// Left alone: no valid header.
    Unreadable,
}

async fn replay_segment(
    path: &Path,
    shard: u32,
    segment_id: u64,
    apply: &mut dyn FnMut(ReplayPosition, &[u8]),
) -> Result<SegmentOutcome, CommitlogError> {
    let file = DmaFile::open(path)
        .await
        .map_err(|e| CommitlogError::io("open segment", path, e))?;
    let result = scan_file(&file, path, shard, segment_id, apply).await;
    let closed = file.close().await;
    let outcome = result?;
    closed.map_err(|e| CommitlogError::io("close segment", path, e))?;
    Ok(outcome)
}

async fn scan_file(
    file: &DmaFile,
    path: &Path,
    shard: u32,
    segment_id: u64,
    apply: &mut dyn FnMut(ReplayPosition, &[u8]),
) -> Result<SegmentOutcome, CommitlogError> {
    let io_error = |e| CommitlogError::io("read segment", path, e);
    let file_bytes = file.file_size().await.map_err(io_error)?;
    // Direct reads must be aligned even when a torn file's length is not.
    let alignment = file.alignment() as usize;
    let first_len = (file_bytes as usize).div_ceil(alignment).max(1) * alignment;
    let first = file.read_at(0, first_len.min(MAX_IO_BYTES)).await;
    let first = first.map_err(io_error)?;
    let header = match SegmentHeader::decode(&first) {
        Ok(header) => header,
        Err(problem) => return Ok(unreadable(path, problem)),
    };
    if header.shard != shard || !valid_geometry(&header, file.alignment()) {
        return Ok(unreadable(path, HeaderProblem::BadChecksum));
    }
    if header.segment_id != segment_id {
        return Ok(SegmentOutcome::Abandoned);
    }
    let mut emit = |position: ReplayPosition, payload: &[u8]| apply(position, payload);
    let mut scanner = SegmentScanner::new(&header, &mut emit);
    let block_bytes = header.block_bytes as usize;
    let end = file_bytes.min(header.segment_bytes);
    let mut pos = 0_u64;
    while pos < end {
        let len = (end - pos).min(MAX_IO_BYTES as u64) as usize;
        let len = len.div_ceil(block_bytes) * block_bytes;
        let mut chunk = file.read_at(pos, len).await.map_err(io_error)?;
        chunk.resize(len, 0);
        for (i, block) in chunk.chunks(block_bytes).enumerate() {
            let index = (pos as usize / block_bytes + i) as u32;
            if index > 0 {
                scanner.feed(index, block);
            }
        }
        pos += len as u64;
    }
    Ok(SegmentOutcome::Scanned(scanner.finish()))
}

fn valid_geometry(header: &SegmentHeader, alignment: u64) -> bool {
    let block = u64::from(header.block_bytes);
    block >= alignment.max(BLOCK_HEADER_BYTES as u64 * 2)
        && block as usize <= MAX_BLOCK_BYTES
        && block.is_power_of_two()
        && header.segment_bytes.is_multiple_of(block)
        && header.segment_bytes / block >= 2
        && header.segment_bytes / block <= u64::from(u32::MAX)
}

fn unreadable(path: &Path, problem: HeaderProblem) -> SegmentOutcome {
    tracing::error!(path = %path.display(), ?problem, "not replaying a commitlog segment without a valid header; leaving it alone");
    SegmentOutcome::Unreadable
}

#[cfg(test)]
mod tests {
    use super::super::format::BatchLayout;
    use super::*;

    const BLOCK: usize = 512;

    fn header() -> SegmentHeader {
        SegmentHeader {
            shard: 0,
            segment_id: 5,
            block_bytes: BLOCK as u32,
            segment_bytes: 64 * BLOCK as u64,
            starts_run: false,
        }
    }

    /// Scans `image` (blocks from index 1) and returns entries and scan.
    fn scan_image(image: &[u8]) -> (Vec<(u64, Vec<u8>)>, SegmentScan) {
        let mut entries = Vec::new();
        let mut emit =
            |p: ReplayPosition, payload: &[u8]| entries.push((p.offset, payload.to_vec()));
        let mut scanner = SegmentScanner::new(&header(), &mut emit);
        for (i, block) in image.chunks(BLOCK).enumerate() {
            scanner.feed(i as u32 + 1, block);
        }
        let scan = scanner.finish();
        (entries, scan)
    }

    fn payload(i: usize) -> Vec<u8> {
        vec![i as u8; 37 * i % 700]
    }

    #[test]
    fn entries_spanning_blocks_and_batches_come_back_in_order() {
        let mut image = Vec::new();
        let mut expected = Vec::new();
        let mut next_block = 1;
        for batch_number in 0..4 {
            let mut batch = BatchLayout::new(5, next_block, 64, BLOCK);
            for i in 0..3 {
                let payload = payload(batch_number * 3 + i);
                let offset = batch.push(&payload).expect("fits");
                expected.push((offset, payload));
            }
            image.extend(batch.encode(next_block));
            next_block += batch.blocks();
        }
        let (entries, scan) = scan_image(&image);
        assert_eq!(entries, expected);
        assert_eq!(scan.damaged, Vec::<u32>::new());
        assert_eq!(judge(&scan, true), Judgement::default());
    }

    #[test]
    fn damage_before_the_durable_mark_is_corruption_after_it_a_torn_tail() {
        let mut first = BatchLayout::new(5, 1, 64, BLOCK);
        first.push(&[1; 100]).expect("fits");
        let mut second = BatchLayout::new(5, 2, 64, BLOCK);
        second.push(&[2; 100]).expect("fits");
        let mut image = first.encode(1);
        image.extend(second.encode(2));
        image[200] ^= 4;
        let (entries, scan) = scan_image(&image);
        assert_eq!(entries.len(), 1);
        assert_eq!(judge(&scan, true).corrupt_blocks, 1);

        let mut image = first.encode(1);
        image.extend(second.encode(2));
        image[BLOCK + 200] ^= 4;
        let (entries, scan) = scan_image(&image);
        assert_eq!(entries.len(), 1);
        assert_eq!(judge(&scan, true).torn_blocks, 1);
        assert_eq!(judge(&scan, false).corrupt_blocks, 1);
    }
}
