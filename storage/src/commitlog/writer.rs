//! The writer task: takes the batches appends laid out, writes them with
//! direct IO, and syncs (group commit): every append that arrived while a
//! write and sync were in flight is written and synced by the next round
//! together, so concurrent batch-mode appends share one fdatasync.
//!
//! It also switches segment files (syncing the old one first, which is what
//! lets replay call damage in a non-final segment corruption) and, between
//! rounds, recycles or deletes discarded segments and prepares a spare.
use std::rc::Rc;
use std::time::{Duration, Instant};

use scheduler::channels::{LocalReceiver, LocalSender};
use scheduler::io::{DmaFile, MAX_IO_BYTES};

use super::format::SegmentHeader;
use super::{segment, CommitlogError, Inner, Sealed, SyncMode, MAX_SPARE_SEGMENTS};

/// How long a batch-mode writer sleeps when nobody rings.
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// The segment file being written.
struct OpenSegment {
    id: u64,
    file: DmaFile,
    /// Blocks written so far (the header block included).
    written_blocks: u32,
    /// Blocks known durable.
    durable_blocks: u32,
}

/// The writer's loop; ends once the commitlog is closing and drained.
pub(super) async fn run(inner: Rc<Inner>, rings: LocalReceiver<()>, done: LocalSender<()>) {
    let mut current: Option<OpenSegment> = None;
    let mut last_sync = Instant::now();
    loop {
        let wait = match inner.config.sync {
            SyncMode::Periodic(period) => period.saturating_sub(last_sync.elapsed()),
            SyncMode::Batch => IDLE_WAIT,
        };
        let _ = scheduler::with_timeout(wait, rings.recv()).await;
        let closing = inner.state.borrow().closing;
        if inner.state.borrow().poison.is_none() {
            if let Err(error) = round(&inner, &mut current, &mut last_sync, closing).await {
                poison(&inner, &error);
            }
        }
        if closing {
            break;
        }
        maintain(&inner).await;
    }
    if let Some(open) = current.take() {
        if let Err(error) = open.file.close().await {
            tracing::warn!(%error, "closing the commitlog segment failed");
        }
    }
    let mut state = inner.state.borrow_mut();
    state.answer_waiters();
    // Whoever still waits will not be answered: the commitlog is closed.
    state.waiters.clear();
    drop(state);
    drop(done);
}

/// Writes everything queued, then syncs if the mode or a caller asks.
async fn round(
    inner: &Inner,
    current: &mut Option<OpenSegment>,
    last_sync: &mut Instant,
    closing: bool,
) -> Result<(), CommitlogError> {
    let batches = take_batches(inner);
    let wrote = !batches.is_empty();
    for batch in batches {
        write_batch(inner, current, batch).await?;
    }
    let due = match inner.config.sync {
        SyncMode::Batch => wrote,
        SyncMode::Periodic(period) => last_sync.elapsed() >= period,
    };
    let requested = std::mem::take(&mut inner.state.borrow_mut().sync_requested);
    let unsynced = {
        let state = inner.state.borrow();
        state.written_seq > state.synced_seq
    };
    if due || requested || closing {
        if let Some(open) = current.as_mut().filter(|_| unsynced) {
            sync(inner, open).await?;
        }
        *last_sync = Instant::now();
    }
    let mut state = inner.state.borrow_mut();
    if current.is_none() || state.written_seq == state.synced_seq {
        // Nothing written is waiting for a sync (or nothing was ever written).
        state.synced_seq = state.written_seq;
    }
    state.answer_waiters();
    Ok(())
}

fn take_batches(inner: &Inner) -> Vec<Sealed> {
    let mut state = inner.state.borrow_mut();
    state.seal(inner);
    state.pending_bytes = 0;
    state.sealed.drain(..).collect()
}

async fn write_batch(
    inner: &Inner,
    current: &mut Option<OpenSegment>,
    batch: Sealed,
) -> Result<(), CommitlogError> {
    let open = switch_to(inner, current, batch.layout.segment_id).await?;
    assert_eq!(
        batch.layout.start_block, open.written_blocks,
        "batches of a segment are written back to back"
    );
    let image = batch.layout.encode(open.durable_blocks);
    let mut pos = u64::from(batch.layout.start_block) * inner.block_bytes as u64;
    for chunk in image.chunks(MAX_IO_BYTES) {
        let mut buffer = open.file.alloc_buffer(chunk.len());
        buffer.as_bytes_mut().copy_from_slice(chunk);
        let path = segment::path(&inner.dir, inner.shard, open.id);
        open.file
            .write_at(buffer, pos)
            .await
            .map_err(|e| CommitlogError::io("write segment", &path, e))?;
        pos += chunk.len() as u64;
    }
    open.written_blocks += batch.layout.blocks();
    let mut state = inner.state.borrow_mut();
    state.written_seq = batch.last_seq;
    state.stats.batches_written += 1;
    state.stats.blocks_written += u64::from(batch.layout.blocks());
    state.answer_waiters();
    Ok(())
}

/// Makes segment `id` the open one: syncs and closes the previous one, and
/// takes the spare prepared for `id` (or prepares it now).
async fn switch_to<'a>(
    inner: &Inner,
    current: &'a mut Option<OpenSegment>,
    id: u64,
) -> Result<&'a mut OpenSegment, CommitlogError> {
    if current.as_ref().is_some_and(|open| open.id != id) {
        let mut old = current.take().expect("checked above");
        sync(inner, &mut old).await?;
        let path = segment::path(&inner.dir, inner.shard, old.id);
        old.file
            .close()
            .await
            .map_err(|e| CommitlogError::io("close segment", &path, e))?;
    }
    if current.is_none() {
        *current = Some(open_segment(inner, id).await?);
        inner.state.borrow_mut().writing_segment = Some(id);
    }
    Ok(current.as_mut().expect("opened above"))
}

async fn open_segment(inner: &Inner, id: u64) -> Result<OpenSegment, CommitlogError> {
    let spare = {
        let mut state = inner.state.borrow_mut();
        while state.spares.front().is_some_and(|spare| *spare < id) {
            // Cannot happen with ids handed out in order; harmless if it did.
            let stale = state.spares.pop_front().expect("checked");
            state.live.insert(stale);
        }
        state.spares.front() == Some(&id)
    };
    if spare {
        inner.state.borrow_mut().spares.pop_front();
    } else {
        create_segment(inner, id).await?;
    }
    let path = segment::path(&inner.dir, inner.shard, id);
    let file = DmaFile::open(&path)
        .await
        .map_err(|e| CommitlogError::io("open segment", &path, e))?;
    Ok(OpenSegment {
        id,
        file,
        written_blocks: 1,
        durable_blocks: 1,
    })
}

async fn sync(inner: &Inner, open: &mut OpenSegment) -> Result<(), CommitlogError> {
    let written_seq = inner.state.borrow().written_seq;
    let path = segment::path(&inner.dir, inner.shard, open.id);
    let failing = inner.failing_syncs.get();
    let result = if failing > 0 {
        inner.failing_syncs.set(failing - 1);
        Err(std::io::Error::other("injected sync failure"))
    } else {
        open.file.fdatasync().await
    };
    result.map_err(|e| CommitlogError::io("sync segment", &path, e))?;
    open.durable_blocks = open.written_blocks;
    let mut state = inner.state.borrow_mut();
    assert!(written_seq >= state.synced_seq, "durability only grows");
    state.synced_seq = written_seq;
    state.stats.syncs += 1;
    state.answer_waiters();
    Ok(())
}

fn poison(inner: &Inner, error: &CommitlogError) {
    tracing::error!(shard = inner.shard, %error, "commitlog write failed; refusing writes until restart");
    let mut state = inner.state.borrow_mut();
    state.poison = Some(error.to_string());
    state.sealed.clear();
    state.pending_bytes = 0;
    state.answer_waiters();
}

fn header(inner: &Inner, id: u64) -> SegmentHeader {
    SegmentHeader {
        shard: inner.shard,
        segment_id: id,
        block_bytes: inner.block_bytes as u32,
        segment_bytes: inner.config.segment_bytes,
        starts_run: id == inner.first_segment_id,
    }
}

async fn create_segment(inner: &Inner, id: u64) -> Result<(), CommitlogError> {
    segment::create(&inner.dir, header(inner, id))
        .await
        .map_err(|e| CommitlogError::io("create segment", &inner.dir, e))?;
    inner.state.borrow_mut().stats.segments_created += 1;
    Ok(())
}

/// Frees discarded segments (recycling up to the spare limit) and keeps a
/// spare ready. Failures are logged: they waste space but lose nothing.
async fn maintain(inner: &Inner) {
    for id in discardable(inner) {
        if let Err(error) = free_segment(inner, id).await {
            tracing::warn!(segment = id, %error, "freeing a commitlog segment failed");
        }
    }
    let want_spare = {
        let state = inner.state.borrow();
        state.spares.is_empty() && state.poison.is_none() && !state.closing
    };
    if want_spare && within_space(inner, 1) {
        let id = next_spare_id(inner);
        match create_segment(inner, id).await {
            Ok(()) => inner.state.borrow_mut().spares.push_back(id),
            Err(error) => tracing::warn!(%error, "preparing a spare commitlog segment failed"),
        }
    }
}

/// Live segments wholly before both the discard mark and the segment being
/// written, taken out of the live set.
fn discardable(inner: &Inner) -> Vec<u64> {
    let mut state = inner.state.borrow_mut();
    let writing = state.writing_segment.unwrap_or(inner.first_segment_id);
    let below = state.discard_below.min(writing);
    let ids: Vec<u64> = state.live.range(..below).copied().collect();
    for id in &ids {
        state.live.remove(id);
    }
    ids
}

async fn free_segment(inner: &Inner, id: u64) -> Result<(), CommitlogError> {
    let path = segment::path(&inner.dir, inner.shard, id);
    let recycle = inner.state.borrow().spares.len() < MAX_SPARE_SEGMENTS && within_space(inner, 1);
    if recycle {
        let new_id = next_spare_id(inner);
        segment::recycle(&inner.dir, id, header(inner, new_id))
            .await
            .map_err(|e| CommitlogError::io("recycle segment", &path, e))?;
        let mut state = inner.state.borrow_mut();
        state.spares.push_back(new_id);
        state.stats.segments_recycled += 1;
    } else {
        segment::remove(&inner.dir, inner.shard, id)
            .await
            .map_err(|e| CommitlogError::io("remove segment", &path, e))?;
        inner.state.borrow_mut().stats.segments_deleted += 1;
    }
    Ok(())
}

/// Whether `extra` more segment files keep the total within the limit.
fn within_space(inner: &Inner, extra: u64) -> bool {
    let state = inner.state.borrow();
    let files = (state.live.len() + state.spares.len()) as u64 + extra;
    files * inner.config.segment_bytes <= inner.config.total_space_bytes
}

/// The id a new spare gets: after every id handed out.
fn next_spare_id(inner: &Inner) -> u64 {
    let state = inner.state.borrow();
    let newest = [
        Some(state.open.segment_id),
        state.spares.back().copied(),
        state.writing_segment,
        state.live.last().copied(),
    ];
    newest.into_iter().flatten().max().unwrap_or(0) + 1
}
