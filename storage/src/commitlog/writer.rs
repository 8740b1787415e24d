//! The writer task: takes the batches appends laid out, writes them with
//! direct IO, and has them synced (group commit): every append that arrives
//! while a write or sync is in flight goes out with the next one, so
//! concurrent batch-mode appends share one fdatasync.
//!
//! Writing and syncing are a two-stage pipeline. A sync runs in its own
//! task; while it is in flight the writer already writes what was appended
//! meanwhile, and the next sync starts as soon as the previous one
//! completes. An fdatasync only covers the writes completed before it was
//! issued, so a sync covers exactly the entries written when it starts
//! (`State::sync_started`) and makes only those durable when it completes
//! (`State::sync_completed`); at most one sync is in flight.
//!
//! In periodic mode the writer writes behind: appends are acknowledged at
//! once and written when a full write's worth is queued, when the oldest
//! has waited [`super::WRITE_BEHIND_DELAY`], at the sync period, on `sync`
//! and at close, so a stream of small appends costs one write every few
//! milliseconds rather than one per reactor round.
//!
//! The writer also switches segment files: it waits for the sync in flight
//! and fdatasyncs the previous segment before writing the next (which is
//! what lets replay call damage in a non-final segment corruption). The
//! preparer task (`preparer`) creates and recycles the segment files off
//! the writer's path.
use std::rc::Rc;
use std::time::Duration;

use scheduler::channels::{LocalReceiver, LocalSender};
use scheduler::clock::{monotonic_now, Instant};
use scheduler::io::{DmaFile, MAX_WRITE_BYTES};

use super::{preparer, segment, CommitlogError, Inner, Sealed, SyncMode};

/// The channels the writer listens and answers on.
pub(super) struct Channels {
    /// The writer's doorbell (appends, syncs, close, completed syncs).
    pub rings: LocalReceiver<()>,
    /// The preparer's doorbell, handed to the preparer.
    pub preparer_rings: LocalReceiver<()>,
    /// Rung by the preparer after each segment it prepared.
    pub prepared: LocalReceiver<()>,
    /// Dropped once the writer is done.
    pub done: LocalSender<()>,
}

/// The segment file being written.
struct OpenSegment {
    id: u64,
    /// Shared with the sync in flight.
    file: Rc<DmaFile>,
    /// Blocks written so far (the header block included).
    written_blocks: u32,
}

struct Writer {
    inner: Rc<Inner>,
    current: Option<OpenSegment>,
    /// The sync task last started (maybe finished).
    sync_task: Option<scheduler::Task<()>>,
    last_sync: Instant,
    prepared: LocalReceiver<()>,
}

/// The writer's loop; ends once the commitlog is closing and drained.
pub(super) async fn run(inner: Rc<Inner>, channels: Channels) {
    let preparer =
        scheduler::spawn_local_task(preparer::run(inner.clone(), channels.preparer_rings));
    let mut writer = Writer {
        inner: inner.clone(),
        current: None,
        sync_task: None,
        last_sync: monotonic_now(),
        prepared: channels.prepared,
    };
    loop {
        match writer.wait_time() {
            Some(wait) => {
                let _ = scheduler::with_timeout(wait, channels.rings.recv()).await;
            }
            None => {
                let _ = channels.rings.recv().await;
            }
        }
        let closing = inner.state.borrow().closing;
        if inner.state.borrow().poison.is_none() {
            if let Err(error) = writer.step(closing).await {
                poison(&inner, &error);
            }
        }
        if closing {
            break;
        }
    }
    writer.finish().await;
    inner.ring_preparer();
    preparer.await;
    inner.state.borrow_mut().close_waiters();
    drop(channels.done);
}

impl Writer {
    /// How long to sleep unless rung; `None`: until rung.
    fn wait_time(&self) -> Option<Duration> {
        let SyncMode::Periodic(period) = self.inner.config.sync else {
            return None;
        };
        let mut wait = period.saturating_sub(self.last_sync.elapsed());
        if let Some(since) = self.inner.state.borrow().pending_since {
            wait = wait.min(super::WRITE_BEHIND_DELAY.saturating_sub(since.elapsed()));
        }
        Some(wait)
    }

    /// Whether a sync is due: always in batch mode, at the period in
    /// periodic mode, and whenever asked or closing.
    fn sync_due(&self, closing: bool) -> bool {
        let requested = closing || self.inner.state.borrow().sync_requested;
        requested
            || match self.inner.config.sync {
                SyncMode::Batch => true,
                SyncMode::Periodic(period) => self.last_sync.elapsed() >= period,
            }
    }

    /// Writes what is due, then starts a sync if one is due and none is
    /// in flight (the one in flight rings when it completes).
    async fn step(&mut self, closing: bool) -> Result<(), CommitlogError> {
        let sync_due = self.sync_due(closing);
        let write_due = sync_due || self.inner.state.borrow().write_behind_due(monotonic_now());
        if self.inner.config.sync == SyncMode::Batch {
            // Let every task made runnable with us append first (the
            // appenders a completed sync just answered, above all), so
            // they join this write instead of waiting for the next sync.
            scheduler::yield_task_queue().await;
        }
        if write_due {
            for batch in take_batches(&self.inner) {
                self.write_batch(batch).await?;
            }
        }
        if sync_due && self.inner.state.borrow().syncing_seq.is_none() {
            if self.inner.state.borrow().unsynced() {
                self.start_sync();
            }
            self.inner.state.borrow_mut().sync_requested = false;
            self.last_sync = monotonic_now();
        }
        Ok(())
    }

    /// Starts a sync of the open segment in its own task; it covers the
    /// entries written so far.
    fn start_sync(&mut self) {
        let Some(open) = &self.current else {
            return;
        };
        let (file, id, blocks) = (open.file.clone(), open.id, open.written_blocks);
        let covered = self.inner.state.borrow_mut().sync_started();
        let inner = self.inner.clone();
        // The previous task has finished: only one sync is ever in flight.
        self.sync_task = Some(scheduler::spawn_local_task(async move {
            let result = fdatasync(&inner, &file, id).await;
            drop(file);
            match result {
                Ok(()) => inner.state.borrow_mut().sync_completed(covered, id, blocks),
                Err(error) => {
                    inner.state.borrow_mut().sync_failed();
                    poison(&inner, &error);
                }
            }
            inner.ring();
        }));
    }

    /// Waits for the sync in flight, if any.
    async fn collect_sync(&mut self) {
        if let Some(task) = self.sync_task.take() {
            task.await;
        }
    }

    /// Waits for the sync in flight, then syncs what it did not cover.
    async fn sync_now(&mut self) -> Result<(), CommitlogError> {
        self.collect_sync().await;
        self.inner.state.borrow().check_not_poisoned()?;
        let Some(open) = &self.current else {
            return Ok(());
        };
        if !self.inner.state.borrow().unsynced() {
            return Ok(());
        }
        let covered = self.inner.state.borrow_mut().sync_started();
        let result = fdatasync(&self.inner, &open.file, open.id).await;
        let mut state = self.inner.state.borrow_mut();
        match result {
            Ok(()) => {
                state.sync_completed(covered, open.id, open.written_blocks);
                Ok(())
            }
            Err(error) => {
                state.sync_failed();
                Err(error)
            }
        }
    }

    /// At close: the last sync, and the segment file closed.
    async fn finish(&mut self) {
        if self.inner.state.borrow().poison.is_none() {
            if let Err(error) = self.sync_now().await {
                poison(&self.inner, &error);
            }
        }
        self.collect_sync().await;
        if let Some(open) = self.current.take() {
            if let Err(error) = close_segment(&self.inner, open).await {
                tracing::warn!(%error, "closing the commitlog segment failed");
            }
        }
    }

    async fn write_batch(&mut self, batch: Sealed) -> Result<(), CommitlogError> {
        self.switch_to(batch.layout.segment_id).await?;
        let inner = &self.inner;
        let open = self.current.as_mut().expect("switched to it");
        assert_eq!(
            batch.layout.start_block, open.written_blocks,
            "batches of a segment are written back to back"
        );
        let durable_blocks = inner.state.borrow().durable_blocks_of(open.id);
        let block_bytes = inner.block_bytes;
        let blocks = batch.layout.blocks() as usize;
        let blocks_per_write = MAX_WRITE_BYTES / block_bytes;
        let writes = (0..blocks).step_by(blocks_per_write).map(|first| {
            let count = blocks_per_write.min(blocks - first);
            let mut buffer = open.file.alloc_buffer_for_overwrite(count * block_bytes);
            batch
                .layout
                .encode_blocks_into(durable_blocks, first, buffer.as_bytes_mut());
            let block = batch.layout.start_block as usize + first;
            (buffer, (block * block_bytes) as u64)
        });
        write_all(inner, &open.file, open.id, writes.collect()).await?;
        open.written_blocks += batch.layout.blocks();
        let mut state = inner.state.borrow_mut();
        state.stats.batches_written += 1;
        state.stats.blocks_written += u64::from(batch.layout.blocks());
        if inner.write_through() {
            state.write_made_durable(batch.last_seq, open.id, open.written_blocks);
        } else {
            state.write_completed(batch.last_seq);
        }
        state.spare_buffers = batch.layout.into_buffers();
        Ok(())
    }

    /// Makes segment `id` the open one: syncs and closes the previous one,
    /// and takes the spare prepared for `id` (or prepares it now).
    async fn switch_to(&mut self, id: u64) -> Result<(), CommitlogError> {
        if self.current.as_ref().is_some_and(|open| open.id != id) {
            self.sync_now().await?;
            let old = self.current.take().expect("checked above");
            close_segment(&self.inner, old).await?;
        }
        if self.current.is_none() {
            self.current = Some(self.open_segment(id).await?);
            let mut state = self.inner.state.borrow_mut();
            state.writing_segment = Some(id);
            state.durable_blocks = (id, 1);
            drop(state);
            // A spare was used up, and older segments may now be freed.
            self.inner.ring_preparer();
        }
        Ok(())
    }

    async fn open_segment(&mut self, id: u64) -> Result<OpenSegment, CommitlogError> {
        loop {
            match next_step_for(&self.inner, id) {
                Segment::Spare => break,
                Segment::Create => {
                    preparer::create_segment(&self.inner, id).await?;
                    break;
                }
                Segment::Wait => {
                    let _ = self.prepared.recv().await;
                }
            }
        }
        let path = segment::path(&self.inner.dir, self.inner.shard, id);
        let file = if self.inner.write_through() {
            DmaFile::open_write_through(&path).await
        } else {
            DmaFile::open(&path).await
        };
        let file = file.map_err(|e| CommitlogError::io("open segment", &path, e))?;
        Ok(OpenSegment {
            id,
            file: Rc::new(file),
            written_blocks: 1,
        })
    }
}

/// How the writer gets the segment it needs.
enum Segment {
    /// The spare was ready and is taken.
    Spare,
    /// The preparer is making it: wait.
    Wait,
    /// Nobody is: create it now.
    Create,
}

fn next_step_for(inner: &Inner, id: u64) -> Segment {
    let mut state = inner.state.borrow_mut();
    while state.spares.front().is_some_and(|spare| *spare < id) {
        // Cannot happen with ids handed out in order; harmless if it did.
        let stale = state.spares.pop_front().expect("checked");
        state.live.insert(stale);
    }
    if state.spares.front() == Some(&id) {
        state.spares.pop_front();
        Segment::Spare
    } else if state.preparing == Some(id) {
        Segment::Wait
    } else {
        Segment::Create
    }
}

/// Writes every `(buffer, position)` of one batch, all in flight at once;
/// returns once all completed, with the first error if any failed.
async fn write_all(
    inner: &Inner,
    file: &Rc<DmaFile>,
    id: u64,
    mut writes: Vec<(scheduler::io::DmaBuffer, u64)>,
) -> Result<(), CommitlogError> {
    let last = writes.pop().expect("a batch has a block");
    let others: Vec<_> = writes
        .into_iter()
        .map(|(buffer, pos)| {
            let file = file.clone();
            scheduler::spawn_local_task(async move { file.write_at(buffer, pos).await })
        })
        .collect();
    let mut result = file.write_at(last.0, last.1).await;
    for task in others {
        let written = task.await;
        result = result.and(written);
    }
    if inner.write_through() && result.is_ok() {
        // A write-through write is the sync an injected failure hits.
        if let Some(injected) = inner.injected_sync_failure() {
            result = Err(injected);
        }
    }
    let path = || segment::path(&inner.dir, inner.shard, id);
    result.map_err(|e| CommitlogError::io("write segment", &path(), e))
}

fn take_batches(inner: &Inner) -> Vec<Sealed> {
    let mut state = inner.state.borrow_mut();
    state.seal(inner);
    state.pending_bytes = 0;
    state.pending_since = None;
    state.sealed.drain(..).collect()
}

async fn fdatasync(inner: &Inner, file: &DmaFile, id: u64) -> Result<(), CommitlogError> {
    let path = segment::path(&inner.dir, inner.shard, id);
    let result = match inner.injected_sync_failure() {
        Some(injected) => Err(injected),
        None => file.fdatasync().await,
    };
    result.map_err(|e| CommitlogError::io("sync segment", &path, e))
}

async fn close_segment(inner: &Inner, open: OpenSegment) -> Result<(), CommitlogError> {
    let path = segment::path(&inner.dir, inner.shard, open.id);
    // Every sync and write holding the file has completed by now.
    let file = Rc::into_inner(open.file).expect("no IO in flight on a segment being closed");
    file.close()
        .await
        .map_err(|e| CommitlogError::io("close segment", &path, e))
}

/// Refuses every later write; answers every waiter with the error.
pub(super) fn poison(inner: &Inner, error: &CommitlogError) {
    let mut state = inner.state.borrow_mut();
    if state.poison.is_none() {
        tracing::error!(shard = inner.shard, %error, "commitlog write failed; refusing writes until restart");
    }
    state.poison(error.to_string());
}
