//! The thin runtime Tessera runs on: shards (one glommio executor per core),
//! cross-shard messaging, CPU scheduling groups (task queues with shares),
//! the IO scheduler every disk IO goes through, and the clock.
//!
//! Everything that touches threads, cores, the wall clock or another shard
//! goes through this crate, so the rest of the server stays single-threaded
//! per shard and a later move away from glommio stays contained here.
//!
//! ```no_run
//! use scheduler::{run_shards, ShardSetConfig, smp};
//!
//! let results = run_shards(ShardSetConfig::new(2), |shard| async move {
//!     // Every shard asks shard 0 for its id.
//!     smp::submit_to(0, move || async move { (shard, smp::this_shard()) })
//!         .await
//!         .unwrap()
//! })
//! .unwrap();
//! assert_eq!(results.len(), 2);
//! ```
pub mod clock;
pub mod groups;
pub mod guard;
pub mod io;
pub mod ioqueue;
pub mod iotune;
pub mod runtime;
pub mod smp;

pub use groups::{spawn_detached_in, spawn_in, Group};
pub use ioqueue::{io_stats, set_compaction_backlog, IoClass};
pub use runtime::{run_shards, RuntimeError, ShardSetConfig};

/// Runs a blocking function (rare file work such as the schema file, or CPU
/// work like password hashing) on the executor's blocking thread pool, so the
/// shard's reactor keeps serving while it runs.
pub async fn spawn_blocking<F, R>(func: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    glommio::executor().spawn_blocking(func).await
}

/// Waits `duration` on the shard's timer.
pub async fn sleep(duration: std::time::Duration) {
    glommio::timer::sleep(duration).await;
}

/// Lets every other runnable task queue (CPU group) run before the caller
/// continues; the caller also goes behind the tasks runnable in its own.
pub async fn yield_task_queue() {
    glommio::executor().yield_task_queue_now().await;
}

/// How long a long CPU loop on a shard (a merge, building a filter) runs
/// before it lets the other task queues (client requests) run.
pub const TASK_QUOTA: std::time::Duration = std::time::Duration::from_micros(200);

/// Keeps a long CPU loop within [`TASK_QUOTA`]: call [`TaskQuota::tick`] on
/// every iteration; about once a quota it yields the task queue, so a
/// request waits for at most about one quota of the loop's work.
#[derive(Debug)]
pub struct TaskQuota {
    since: std::time::Instant,
    ticks: u32,
}

impl Default for TaskQuota {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskQuota {
    /// Iterations between clock reads.
    const TICKS_PER_CHECK: u32 = 32;

    /// A quota starting now.
    pub fn new() -> Self {
        Self {
            since: std::time::Instant::now(),
            ticks: 0,
        }
    }

    /// Counts one iteration; once the quota is spent, steps aside until the
    /// shard has polled for new IO events.
    ///
    /// Yielding the task queue would not be enough: the executor goes on
    /// to the next runnable queue (often this one again) and polls for IO,
    /// which is what wakes a request that just arrived on its socket, only
    /// when no queue can run or its preemption timer (100 ms) fires. A
    /// timer of a microsecond makes this task wait for the next poll.
    pub async fn tick(&mut self) {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(Self::TICKS_PER_CHECK) && self.since.elapsed() >= TASK_QUOTA {
            sleep(std::time::Duration::from_micros(1)).await;
            self.since = std::time::Instant::now();
        }
    }
}

/// Runs `future`, or gives up with `None` after `duration`.
pub async fn with_timeout<F: std::future::Future>(
    duration: std::time::Duration,
    future: F,
) -> Option<F::Output> {
    futures_lite::future::or(async { Some(future.await) }, async {
        glommio::timer::sleep(duration).await;
        None
    })
    .await
}

/// Sockets, as shards use them (SO_REUSEPORT listeners, `!Send` streams,
/// and streams accepted to be handed to another shard).
pub mod net {
    pub use glommio::net::{AcceptedTcpStream, TcpListener, TcpStream};
}

/// Shard-local synchronization.
pub mod sync {
    pub use glommio::sync::{Semaphore, StaticPermit};
}

/// Shard-local channels.
pub mod channels {
    pub use glommio::channels::local_channel::{
        new_bounded, new_unbounded, LocalReceiver, LocalSender,
    };
}

/// A spawned task: awaiting it gives its output; dropping it cancels it.
pub use glommio::Task;

/// Runs `future` on this shard in the background.
pub fn spawn_local(future: impl std::future::Future<Output = ()> + 'static) {
    glommio::spawn_local(future).detach();
}

/// Runs `future` on this shard; dropping the returned task cancels it.
pub fn spawn_local_task<T: 'static>(
    future: impl std::future::Future<Output = T> + 'static,
) -> glommio::Task<T> {
    glommio::spawn_local(future)
}
