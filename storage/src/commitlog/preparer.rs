//! The preparer task: frees discarded segments (recycling up to
//! [`MAX_SPARE_SEGMENTS`] of them, deleting the rest) and keeps a spare
//! segment ready, off the writer's path. Each of these is a write, an
//! fdatasync, a rename and a directory fsync: done by the writer between
//! rounds, they made every append arriving meanwhile wait for them.
//!
//! The writer takes a spare when it moves to a new segment; if the
//! preparer is making that very segment the writer waits for it, and if
//! nobody is, the writer creates it itself. `State::preparing` names the
//! segment the preparer works on, so the two never make the same one.
use std::rc::Rc;

use scheduler::channels::LocalReceiver;

use super::format::SegmentHeader;
use super::{segment, CommitlogError, Inner, MAX_SPARE_SEGMENTS};

/// The preparer's loop; ends once the commitlog is closing.
pub(super) async fn run(inner: Rc<Inner>, rings: LocalReceiver<()>) {
    loop {
        if inner.state.borrow().closing {
            break;
        }
        maintain(&inner).await;
        if rings.recv().await.is_none() {
            break;
        }
    }
}

/// Frees discarded segments and keeps a spare ready. Failures are logged:
/// they waste space but lose nothing.
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
        let id = start_preparing(inner);
        let created = create_segment(inner, id).await;
        finish_preparing(inner, id, created.is_ok());
        if let Err(error) = created {
            tracing::warn!(%error, "preparing a spare commitlog segment failed");
        }
    }
}

/// Picks the id of the next spare and marks it in preparation.
fn start_preparing(inner: &Inner) -> u64 {
    let id = next_spare_id(inner);
    inner.state.borrow_mut().preparing = Some(id);
    id
}

/// Marks the preparation of `id` over (a spare if `ready`) and tells a
/// writer that may be waiting for it.
fn finish_preparing(inner: &Inner, id: u64, ready: bool) {
    let mut state = inner.state.borrow_mut();
    state.preparing = None;
    if ready {
        state.spares.push_back(id);
    }
    drop(state);
    let _ = inner.segment_prepared.try_send(());
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
    let recycle = {
        let state = inner.state.borrow();
        state.spares.len() < MAX_SPARE_SEGMENTS && !state.closing
    } && within_space(inner, 1);
    if recycle {
        let new_id = start_preparing(inner);
        let recycled = segment::recycle(&inner.dir, id, header(inner, new_id)).await;
        finish_preparing(inner, new_id, recycled.is_ok());
        recycled.map_err(|e| CommitlogError::io("recycle segment", &path, e))?;
        inner.state.borrow_mut().stats.segments_recycled += 1;
    } else {
        segment::remove(&inner.dir, inner.shard, id)
            .await
            .map_err(|e| CommitlogError::io("remove segment", &path, e))?;
        inner.state.borrow_mut().stats.segments_deleted += 1;
    }
    Ok(())
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

/// Creates segment `id` (zero-filled, header written, synced, renamed).
pub(super) async fn create_segment(inner: &Inner, id: u64) -> Result<(), CommitlogError> {
    segment::create(&inner.dir, header(inner, id))
        .await
        .map_err(|e| CommitlogError::io("create segment", &inner.dir, e))?;
    inner.state.borrow_mut().stats.segments_created += 1;
    Ok(())
}

/// Whether `extra` more segment files keep the total within the limit.
fn within_space(inner: &Inner, extra: u64) -> bool {
    let state = inner.state.borrow();
    let preparing = u64::from(state.preparing.is_some());
    let files = (state.live.len() + state.spares.len()) as u64 + preparing + extra;
    files * inner.config.segment_bytes <= inner.config.total_space_bytes
}

/// The id a new spare gets: after every id handed out or in preparation.
fn next_spare_id(inner: &Inner) -> u64 {
    let state = inner.state.borrow();
    let newest = [
        Some(state.open.segment_id),
        state.spares.back().copied(),
        state.writing_segment,
        state.live.last().copied(),
        state.preparing,
    ];
    newest.into_iter().flatten().max().unwrap_or(0) + 1
}
