//! The commitlog of one shard: every mutation is appended here before it is
//! applied to a memtable, so that a restart can replay what memtables lost.
//!
//! It owns the shard's segment files in the commitlog directory: their
//! format (`format`), their files (`segment`), preparing and recycling them
//! off the write path (`preparer`), the group-commit writer (`writer`) and
//! replay at open (`replay`). Callers see opaque
//! payloads and [`ReplayPosition`]s; `DESIGN.md` ("Commitlog") has the
//! layout and what each [`SyncMode`] may lose.
//!
//! Shard-local: `Rc`/`RefCell`, never sent to another thread.
mod error;
mod format;
mod preparer;
mod replay;
mod segment;
mod waiters;
mod writer;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use scheduler::channels::{new_bounded, LocalSender};
use scheduler::clock::{monotonic_now, Instant};
use scheduler::io as fileio;
use waiters::{WaitFor, WaiterQueue};

pub use error::CommitlogError;
use format::{BatchLayout, LayoutBuffers, SegmentHeader, FRAME_HEADER_BYTES, MAX_BLOCK_BYTES};

/// Default segment size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 32 << 20;
/// Default period of `SyncMode::Periodic`.
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_millis(10_000);
/// Default limit of the segments' total size.
pub const DEFAULT_TOTAL_SPACE_BYTES: u64 = 8 << 30;
/// Block size unless the device needs larger blocks.
const DEFAULT_BLOCK_BYTES: u64 = 4096;
/// A write batch grows to this size at most before a new one starts.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Appended bytes not yet written beyond which appends wait for the writer.
const MAX_PENDING_BYTES: usize = 8 << 20;
/// Periodic mode: unwritten bytes that make the writer write at once (one
/// full-size write, [`fileio::MAX_IO_BYTES`]).
const WRITE_BEHIND_BYTES: usize = fileio::MAX_IO_BYTES;
/// Periodic mode: the longest an acknowledged entry stays unwritten (unless
/// the disk is behind), counted from the oldest unwritten append. At 100 000
/// small appends a second a write then carries a few hundred entries
/// instead of the handful one reactor round gathers, while a process kill
/// loses at most this much of the acknowledged appends; a power loss may
/// lose the whole sync period anyway.
pub const WRITE_BEHIND_DELAY: Duration = Duration::from_millis(2);
/// Discarded segments kept (recycled) for reuse instead of deleted.
const MAX_SPARE_SEGMENTS: usize = 2;

/// When appends are acknowledged and segments synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Acknowledge at once; write within [`WRITE_BEHIND_DELAY`] (sooner once
    /// 128 KiB are queued); fdatasync every period.
    Periodic(Duration),
    /// Acknowledge only once durable; concurrent appends share one fdatasync.
    Batch,
}

/// How the commitlog is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Size of each segment file; a multiple of the block size (4 KiB).
    pub segment_bytes: u64,
    pub sync: SyncMode,
    /// Above this many bytes of segments, the caller is asked to flush the
    /// memtables holding the oldest segment's data.
    pub total_space_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            sync: SyncMode::Periodic(DEFAULT_SYNC_PERIOD),
            total_space_bytes: DEFAULT_TOTAL_SPACE_BYTES,
        }
    }
}

/// Where an entry lies in the log; ordered as the log is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplayPosition {
    pub segment_id: u64,
    /// Byte offset of the entry's frame in its segment.
    pub offset: u64,
}

/// What replay found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub segments_replayed: u64,
    pub entries_replayed: u64,
    /// Payload bytes of the replayed entries.
    pub bytes_replayed: u64,
    /// Damaged blocks of data that had been synced: real corruption (logged).
    pub corrupt_blocks: u64,
    /// Damaged or missing blocks of a torn tail: normal after a crash (silent).
    pub torn_blocks: u64,
    /// Entries in intact blocks whose own framing or checksum was wrong.
    pub corrupt_entries: u64,
    /// Files named as our segments without a valid header: left alone.
    pub unreadable_segments: u64,
    /// Files in the directory that are not commitlog files: left alone.
    pub ignored_files: u64,
}

/// One replayed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEntry {
    pub position: ReplayPosition,
    pub payload: Vec<u8>,
}

/// Everything replay found, in log order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    pub entries: Vec<ReplayEntry>,
    pub stats: ReplayStats,
}

/// Counters of the running commitlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitlogStats {
    pub appends: u64,
    pub bytes_appended: u64,
    pub batches_written: u64,
    pub blocks_written: u64,
    /// Syncs of segments: fdatasync calls (periodic syncs, rollovers), and
    /// in batch mode the write-through writes, each its own group commit.
    pub syncs: u64,
    pub segments_created: u64,
    pub segments_recycled: u64,
    pub segments_deleted: u64,
    /// Times the total-space limit asked for the oldest data to be flushed.
    pub space_pressure_signals: u64,
}

/// Called with the position before which data must be flushed (and then
/// discarded) to get back under the total-space limit.
pub type SpacePressureCallback = Rc<dyn Fn(ReplayPosition)>;

/// An appended entry's position and sequence number, the space-pressure
/// signal to give once no borrow is held, and whether to ring the writer.
struct Reserved {
    position: ReplayPosition,
    seq: u64,
    pressure: Option<(SpacePressureCallback, ReplayPosition)>,
    ring: bool,
}

/// The commitlog of one shard.
pub struct Commitlog {
    inner: Rc<Inner>,
    done: scheduler::channels::LocalReceiver<()>,
}

struct Inner {
    dir: PathBuf,
    shard: u32,
    config: Config,
    block_bytes: usize,
    segment_blocks: u32,
    /// The first segment this instance writes; earlier ones were replayed.
    first_segment_id: u64,
    state: RefCell<State>,
    /// Wakes the writer.
    doorbell: LocalSender<()>,
    /// Wakes the preparer.
    preparer_doorbell: LocalSender<()>,
    /// Tells a writer waiting for a segment the preparer works on that the
    /// preparer finished one.
    segment_prepared: LocalSender<()>,
    /// Test hook: this many coming syncs fail.
    failing_syncs: Cell<u32>,
}

struct Sealed {
    layout: BatchLayout,
    last_seq: u64,
}

struct State {
    poison: Option<String>,
    /// `(written_seq, synced_seq)` when the log was poisoned: a parked
    /// waiter of an entry reached by then was answered `Ok` before.
    reached_at_poison: (u64, u64),
    closing: bool,
    /// Sequence number of the last append (0: none yet).
    last_seq: u64,
    open: BatchLayout,
    open_last_seq: u64,
    /// The vectors of the last batch written, for the next one laid out.
    spare_buffers: LayoutBuffers,
    sealed: VecDeque<Sealed>,
    /// Bytes appended and not yet taken by the writer.
    pending_bytes: usize,
    /// When the oldest of them was appended.
    pending_since: Option<Instant>,
    /// The last entry whose write completed (entries are written in order).
    written_seq: u64,
    /// The last entry the sync in flight covers: the last one written
    /// when it was issued.
    syncing_seq: Option<u64>,
    /// The last entry durable.
    synced_seq: u64,
    /// Blocks of a segment known durable: `(segment id, blocks)`.
    durable_blocks: (u64, u32),
    waiters: WaiterQueue,
    /// The writer stopped: parked waiters not answered are closed.
    waiters_closed: bool,
    sync_requested: bool,
    /// Segments holding data not yet discarded (replayed ones included).
    live: BTreeSet<u64>,
    /// Prepared empty segments, by id.
    spares: VecDeque<u64>,
    /// The segment the writer has open.
    writing_segment: Option<u64>,
    /// The segment the preparer is creating or recycling into.
    preparing: Option<u64>,
    /// Data before this segment may go (the highest `discard_before`).
    discard_below: u64,
    stats: CommitlogStats,
    on_space_pressure: Option<SpacePressureCallback>,
}

impl Commitlog {
    /// Opens the commitlog of `shard` in `dir`, replays it, and returns the
    /// entries found. See [`Commitlog::open_with`] to stream them instead.
    pub async fn open(
        dir: &Path,
        shard: u32,
        config: Config,
    ) -> Result<(Commitlog, Replay), CommitlogError> {
        let mut entries = Vec::new();
        let mut collect = |position: ReplayPosition, payload: &[u8]| {
            entries.push(ReplayEntry {
                position,
                payload: payload.to_vec(),
            })
        };
        let (commitlog, stats) = Commitlog::open_with(dir, shard, config, &mut collect).await?;
        Ok((commitlog, Replay { entries, stats }))
    }

    /// Opens the commitlog of `shard` in `dir`, calling `apply` with every
    /// complete entry in log order, then starts the writer. Replayed
    /// segments stay until `discard_before` releases them.
    pub async fn open_with(
        dir: &Path,
        shard: u32,
        config: Config,
        apply: &mut dyn FnMut(ReplayPosition, &[u8]),
    ) -> Result<(Commitlog, ReplayStats), CommitlogError> {
        fileio::create_dir_all(dir)
            .await
            .map_err(|e| CommitlogError::io("create directory", dir, e))?;
        let alignment = fileio::prepare_device(dir)
            .await
            .map_err(|e| CommitlogError::io("probe device of", dir, e))?;
        let block_bytes = block_bytes_for(alignment)?;
        let segment_blocks = check_config(&config, block_bytes)?;
        let replayed = replay::replay_directory(dir, shard, apply).await?;
        let first_segment_id = replayed.max_segment_id + 1;
        let header = SegmentHeader {
            shard,
            segment_id: first_segment_id,
            block_bytes: block_bytes as u32,
            segment_bytes: config.segment_bytes,
            starts_run: true,
        };
        segment::create(dir, header)
            .await
            .map_err(|e| CommitlogError::io("create segment", dir, e))?;
        let mut live: BTreeSet<u64> = replayed.live.iter().copied().collect();
        live.insert(first_segment_id);
        let state = State::new(first_segment_id, segment_blocks, block_bytes, live);
        let (doorbell, rings) = new_bounded(1);
        let (preparer_doorbell, preparer_rings) = new_bounded(1);
        let (segment_prepared, prepared) = new_bounded(1);
        let (done_sender, done) = new_bounded(1);
        let inner = Rc::new(Inner {
            dir: dir.to_path_buf(),
            shard,
            config,
            block_bytes,
            segment_blocks,
            first_segment_id,
            state: RefCell::new(state),
            doorbell,
            preparer_doorbell,
            segment_prepared,
            failing_syncs: Cell::new(0),
        });
        let channels = writer::Channels {
            rings,
            preparer_rings,
            prepared,
            done: done_sender,
        };
        scheduler::spawn_local(writer::run(inner.clone(), channels));
        Ok((Commitlog { inner, done }, replayed.stats))
    }

    /// Appends one entry (an opaque serialized mutation). In periodic mode
    /// it returns at once; in batch mode once the entry is durable.
    pub async fn append(&self, payload: &[u8]) -> Result<ReplayPosition, CommitlogError> {
        self.inner.check_entry_size(payload.len())?;
        self.wait_for_room().await?;
        let reserved = self.inner.reserve(payload)?;
        if let Some((callback, before)) = reserved.pressure {
            callback(before);
        }
        if reserved.ring {
            self.inner.ring();
        }
        if self.inner.config.sync == SyncMode::Batch {
            self.inner.wait(reserved.seq, true).await?;
        }
        Ok(reserved.position)
    }

    /// Waits until every entry appended so far is durable.
    pub async fn sync(&self) -> Result<(), CommitlogError> {
        let seq = {
            let mut state = self.inner.state.borrow_mut();
            state.sync_requested = true;
            state.last_seq
        };
        self.inner.ring();
        self.inner.wait(seq, true).await
    }

    /// Says every entry before `position` is in flushed memtables: the
    /// segments wholly before it are recycled or deleted in the background.
    pub fn discard_before(&self, position: ReplayPosition) {
        let mut state = self.inner.state.borrow_mut();
        state.discard_below = state.discard_below.max(position.segment_id);
        drop(state);
        self.inner.ring_preparer();
    }

    /// The position before which everything was replayed: once the
    /// replayed entries are flushed, `discard_before(replay_end())` frees
    /// their segments.
    pub fn replay_end(&self) -> ReplayPosition {
        ReplayPosition {
            segment_id: self.inner.first_segment_id,
            offset: 0,
        }
    }

    /// The start of the segment appends go to now: every entry appended so
    /// far lies before it or in it. With no write left unflushed,
    /// `discard_before(current_segment_start())` frees every older segment.
    pub fn current_segment_start(&self) -> ReplayPosition {
        ReplayPosition {
            segment_id: self.inner.state.borrow().open.segment_id,
            offset: 0,
        }
    }

    /// The position the next append would get: every entry appended so far
    /// lies before it, every later one at or after it.
    pub fn next_position(&self) -> ReplayPosition {
        let state = self.inner.state.borrow();
        ReplayPosition {
            segment_id: state.open.segment_id,
            offset: state.open.next_offset(),
        }
    }

    /// Sets the callback the total-space limit calls (on a segment switch).
    pub fn set_space_pressure_callback(&self, callback: SpacePressureCallback) {
        self.inner.state.borrow_mut().on_space_pressure = Some(callback);
    }

    /// The position to flush before when over the total-space limit.
    pub fn space_pressure(&self) -> Option<ReplayPosition> {
        self.inner.state.borrow().space_pressure(&self.inner)
    }

    /// The running counters.
    pub fn stats(&self) -> CommitlogStats {
        self.inner.state.borrow().stats
    }

    /// Whether a failed write or sync has poisoned the commitlog.
    pub fn is_poisoned(&self) -> bool {
        self.inner.state.borrow().poison.is_some()
    }

    /// Test hook: the next `count` segment syncs (in batch mode, its
    /// write-through writes) fail as if the disk had.
    #[doc(hidden)]
    pub fn inject_sync_failures(&self, count: u32) {
        self.inner.failing_syncs.set(count);
    }

    /// Writes and syncs what was appended, stops the writer, closes files.
    pub async fn close(self) -> Result<(), CommitlogError> {
        self.inner.state.borrow_mut().closing = true;
        self.inner.ring();
        let _ = self.done.recv().await;
        let state = self.inner.state.borrow();
        match &state.poison {
            Some(reason) => Err(CommitlogError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    async fn wait_for_room(&self) -> Result<(), CommitlogError> {
        loop {
            let seq = {
                let state = self.inner.state.borrow();
                if state.pending_bytes <= MAX_PENDING_BYTES {
                    return Ok(());
                }
                state.last_seq
            };
            self.inner.wait(seq, false).await?;
        }
    }
}

impl Drop for Commitlog {
    fn drop(&mut self) {
        // The writer flushes what is queued and stops.
        self.inner.state.borrow_mut().closing = true;
        self.inner.ring();
    }
}

impl Inner {
    fn ring(&self) {
        // A full doorbell already has a ring pending: the writer will look.
        let _ = self.doorbell.try_send(());
    }

    /// Whether segments are written through (`O_DSYNC`): in batch mode,
    /// where every write must be durable before it is answered, each write
    /// is its own sync and no `fdatasync` follows it.
    fn write_through(&self) -> bool {
        self.config.sync == SyncMode::Batch
    }

    /// Test hook: takes one injected sync failure, if any is left.
    fn injected_sync_failure(&self) -> Option<std::io::Error> {
        let failing = self.failing_syncs.get();
        (failing > 0).then(|| {
            self.failing_syncs.set(failing - 1);
            std::io::Error::other("injected sync failure")
        })
    }

    fn ring_preparer(&self) {
        let _ = self.preparer_doorbell.try_send(());
    }

    fn max_entry_bytes(&self) -> usize {
        (self.segment_blocks as usize - 1) * format::block_capacity(self.block_bytes)
            - FRAME_HEADER_BYTES
    }

    fn check_entry_size(&self, bytes: usize) -> Result<(), CommitlogError> {
        let max_bytes = self.max_entry_bytes();
        if bytes > max_bytes {
            return Err(CommitlogError::EntryTooLarge { bytes, max_bytes });
        }
        Ok(())
    }

    /// Lays the entry out in the open batch, switching segments when full.
    fn reserve(&self, payload: &[u8]) -> Result<Reserved, CommitlogError> {
        let mut state = self.state.borrow_mut();
        state.check_writable()?;
        let mut pressure = None;
        // Batch mode rings on every append: the writer writes whatever is
        // queued at once. Periodic mode rings only when the writer has
        // something to do: arm its write-behind timer (the first unwritten
        // append), or write now (a full write's worth, or a sealed batch).
        let mut ring = self.config.sync == SyncMode::Batch || state.pending_bytes == 0;
        if state.pending_bytes == 0 {
            state.pending_since = Some(monotonic_now());
        }
        let offset = match state.open.push(payload) {
            Some(offset) => offset,
            None => {
                pressure = state.switch_segment(self);
                ring = true;
                state
                    .open
                    .push(payload)
                    .expect("an entry no larger than the maximum fits an empty segment")
            }
        };
        state.last_seq += 1;
        let seq = state.last_seq;
        state.open_last_seq = seq;
        let before = state.pending_bytes;
        state.pending_bytes += FRAME_HEADER_BYTES + payload.len();
        ring |= before < WRITE_BEHIND_BYTES && state.pending_bytes >= WRITE_BEHIND_BYTES;
        state.stats.appends += 1;
        state.stats.bytes_appended += payload.len() as u64;
        let position = ReplayPosition {
            segment_id: state.open.segment_id,
            offset,
        };
        if state.open.stream_bytes() >= MAX_BATCH_BYTES {
            state.seal(self);
            ring = true;
        }
        Ok(Reserved {
            position,
            seq,
            pressure,
            ring,
        })
    }

    /// Waits until entry `seq` is durable (or only written).
    fn wait(&self, seq: u64, durable: bool) -> WaitFor<'_> {
        WaitFor::new(self, seq, durable)
    }
}

impl State {
    fn new(
        first_segment_id: u64,
        segment_blocks: u32,
        block_bytes: usize,
        live: BTreeSet<u64>,
    ) -> State {
        State {
            poison: None,
            reached_at_poison: (0, 0),
            closing: false,
            last_seq: 0,
            open: BatchLayout::new(first_segment_id, 1, segment_blocks, block_bytes),
            open_last_seq: 0,
            spare_buffers: LayoutBuffers::default(),
            sealed: VecDeque::new(),
            pending_bytes: 0,
            pending_since: None,
            written_seq: 0,
            syncing_seq: None,
            synced_seq: 0,
            durable_blocks: (first_segment_id, 1),
            waiters: WaiterQueue::default(),
            waiters_closed: false,
            sync_requested: false,
            live,
            spares: VecDeque::from([first_segment_id]),
            writing_segment: None,
            preparing: None,
            discard_below: 0,
            stats: CommitlogStats {
                segments_created: 1,
                ..CommitlogStats::default()
            },
            on_space_pressure: None,
        }
    }

    fn check_not_poisoned(&self) -> Result<(), CommitlogError> {
        match &self.poison {
            Some(reason) => Err(CommitlogError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_writable(&self) -> Result<(), CommitlogError> {
        self.check_not_poisoned()?;
        if self.closing {
            return Err(CommitlogError::Closed);
        }
        Ok(())
    }

    /// The last entry written, or durable.
    fn reached(&self, durable: bool) -> u64 {
        if durable {
            self.synced_seq
        } else {
            self.written_seq
        }
    }

    /// The answer of a wait for entry `seq` about to park, if it needs no
    /// waiting.
    fn answer_now(&self, seq: u64, durable: bool) -> Option<Result<(), CommitlogError>> {
        if let Err(error) = self.check_not_poisoned() {
            return Some(Err(error));
        }
        if self.reached(durable) >= seq {
            return Some(Ok(()));
        }
        if self.waiters_closed || (self.closing && self.writing_done()) {
            return Some(Err(CommitlogError::Closed));
        }
        None
    }

    /// The answer of a parked wait for entry `seq`, once decided: by the
    /// first of its entry reached, the poison, the writer's end.
    fn answer_parked(&self, seq: u64, durable: bool) -> Option<Result<(), CommitlogError>> {
        if self.poison.is_some() {
            let (written, synced) = self.reached_at_poison;
            let reached = if durable { synced } else { written };
            return Some(if reached >= seq {
                Ok(())
            } else {
                self.check_not_poisoned()
            });
        }
        if self.reached(durable) >= seq {
            return Some(Ok(()));
        }
        self.waiters_closed.then_some(Err(CommitlogError::Closed))
    }

    /// Whether the writer has nothing queued.
    fn writing_done(&self) -> bool {
        self.sealed.is_empty() && self.open.is_empty()
    }

    /// Queues the open batch for writing; the next one starts after it.
    fn seal(&mut self, inner: &Inner) {
        if self.open.is_empty() {
            return;
        }
        let next_block = self.open.start_block + self.open.blocks();
        let next = BatchLayout::reusing(
            std::mem::take(&mut self.spare_buffers),
            self.open.segment_id,
            next_block.min(inner.segment_blocks),
            inner.segment_blocks,
            inner.block_bytes,
        );
        let layout = std::mem::replace(&mut self.open, next);
        self.sealed.push_back(Sealed {
            layout,
            last_seq: self.open_last_seq,
        });
    }

    /// Starts the next segment; returns the space-pressure signal to give.
    fn switch_segment(&mut self, inner: &Inner) -> Option<(SpacePressureCallback, ReplayPosition)> {
        self.seal(inner);
        let next_id = self.open.segment_id + 1;
        let (blocks, block_bytes) = (inner.segment_blocks, inner.block_bytes);
        let empty = std::mem::replace(
            &mut self.open,
            BatchLayout::new(next_id, 1, blocks, block_bytes),
        );
        self.open = BatchLayout::reusing(empty.into_buffers(), next_id, 1, blocks, block_bytes);
        assert!(self.live.insert(next_id), "segment ids are used once");
        let before = self.space_pressure(inner)?;
        self.stats.space_pressure_signals += 1;
        tracing::debug!(
            shard = inner.shard,
            ?before,
            "commitlog over its total space"
        );
        Some((self.on_space_pressure.clone()?, before))
    }

    fn space_pressure(&self, inner: &Inner) -> Option<ReplayPosition> {
        let files = (self.live.len() + self.spares.len()) as u64;
        if files * inner.config.segment_bytes <= inner.config.total_space_bytes {
            return None;
        }
        let oldest = *self.live.first()?;
        Some(ReplayPosition {
            segment_id: oldest + 1,
            offset: 0,
        })
    }

    /// Whether the queued entries should be written now in periodic mode
    /// (write-behind), at `now`.
    fn write_behind_due(&self, now: Instant) -> bool {
        let delay_over = self
            .pending_since
            .is_some_and(|since| now.saturating_duration_since(since) >= WRITE_BEHIND_DELAY);
        !self.sealed.is_empty() || self.pending_bytes >= WRITE_BEHIND_BYTES || delay_over
    }

    /// The write of the entries up to `last_seq` completed.
    fn write_completed(&mut self, last_seq: u64) {
        assert!(last_seq >= self.written_seq, "entries are written in order");
        self.written_seq = last_seq;
        self.answer_waiters();
    }

    /// A write-through write of the entries up to `last_seq` completed:
    /// they are written and durable, and so are `blocks` of `segment_id`.
    fn write_made_durable(&mut self, last_seq: u64, segment_id: u64, blocks: u32) {
        assert!(
            self.syncing_seq.is_none(),
            "no sync runs beside write-through writes"
        );
        assert!(last_seq >= self.written_seq, "entries are written in order");
        self.written_seq = last_seq;
        self.made_durable(last_seq, segment_id, blocks);
    }

    /// Whether some written entry is neither durable nor covered by the
    /// sync in flight.
    fn unsynced(&self) -> bool {
        self.written_seq > self.syncing_seq.unwrap_or(self.synced_seq)
    }

    /// A sync is about to be issued. It covers exactly the entries whose
    /// write has completed now (an fdatasync says nothing of writes still
    /// in flight when it is issued); returns the last of them.
    fn sync_started(&mut self) -> u64 {
        assert!(self.syncing_seq.is_none(), "one sync in flight at a time");
        self.syncing_seq = Some(self.written_seq);
        self.written_seq
    }

    /// The sync that covered entries up to `covered` (see `sync_started`)
    /// completed: those are durable, and so are `blocks` of `segment_id`.
    fn sync_completed(&mut self, covered: u64, segment_id: u64, blocks: u32) {
        assert_eq!(self.syncing_seq, Some(covered), "the sync in flight");
        self.syncing_seq = None;
        self.made_durable(covered, segment_id, blocks);
    }

    /// A sync (or write-through write) made entries up to `seq` and
    /// `blocks` of `segment_id` durable: answers their waiters.
    fn made_durable(&mut self, seq: u64, segment_id: u64, blocks: u32) {
        assert!(seq >= self.synced_seq, "durability only grows");
        self.synced_seq = seq;
        if self.durable_blocks.0 == segment_id {
            self.durable_blocks.1 = self.durable_blocks.1.max(blocks);
        }
        self.stats.syncs += 1;
        self.answer_waiters();
    }

    /// The sync in flight failed (the caller poisons the log).
    fn sync_failed(&mut self) {
        self.syncing_seq = None;
    }

    /// Blocks of `segment_id` known durable.
    fn durable_blocks_of(&self, segment_id: u64) -> u32 {
        match self.durable_blocks {
            (id, blocks) if id == segment_id => blocks,
            _ => 1,
        }
    }

    /// Wakes the waiters whose entries reached the disk (all if failed).
    fn answer_waiters(&mut self) {
        if self.poison.is_some() {
            self.waiters.wake_all();
            return;
        }
        self.waiters.wake_reached(false, self.written_seq);
        self.waiters.wake_reached(true, self.synced_seq);
    }

    /// The writer stopped: whoever still waits is answered `Closed`.
    fn close_waiters(&mut self) {
        self.answer_waiters();
        self.waiters_closed = true;
        self.waiters.wake_all();
    }

    /// Refuses every later write (`reason`); wakes every waiter.
    fn poison(&mut self, reason: String) {
        if self.poison.is_none() {
            self.reached_at_poison = (self.written_seq, self.synced_seq);
            self.poison = Some(reason);
        }
        self.sealed.clear();
        self.pending_bytes = 0;
        self.pending_since = None;
        self.answer_waiters();
    }
}

fn block_bytes_for(alignment: u64) -> Result<usize, CommitlogError> {
    let block = DEFAULT_BLOCK_BYTES.max(alignment);
    if block as usize > MAX_BLOCK_BYTES || !block.is_power_of_two() {
        return Err(CommitlogError::InvalidConfig {
            reason: format!("device alignment {alignment} is not supported"),
        });
    }
    Ok(block as usize)
}

/// Checks `config`; returns the blocks per segment.
fn check_config(config: &Config, block_bytes: usize) -> Result<u32, CommitlogError> {
    let block = block_bytes as u64;
    let blocks = config.segment_bytes / block;
    if !config.segment_bytes.is_multiple_of(block) || blocks < 4 || blocks > u64::from(u32::MAX) {
        return Err(CommitlogError::InvalidConfig {
            reason: format!(
                "segment size {} must be a multiple of {block} bytes, and 4 to 2^32 blocks",
                config.segment_bytes
            ),
        });
    }
    if let SyncMode::Periodic(period) = config.sync {
        if period.is_zero() {
            return Err(CommitlogError::InvalidConfig {
                reason: "a periodic sync needs a non-zero period".to_string(),
            });
        }
    }
    Ok(blocks as u32)
}
