//! The IO scheduler: every data IO of the server waits in its shard's fair
//! queue, tagged with an IO class, and reaches the disk only when the disk
//! can take it. Queries rank above compaction and streaming by shares, and
//! the disk's own queue stays short, so a query issued now is near the
//! head of the line instead of behind a hundred compaction writes.
//!
//! What lives where:
//! - [`fair`]: the share-based fair queue (pure data structure);
//! - [`bucket`]: the disk's capacity as a lock-free token bucket all
//!   shards share;
//! - [`dispatcher`]: one shard's dispatch decision (fair queue + bucket +
//!   in-flight cap), pure and testable with a simulated clock;
//! - [`disk`]: the disk model (`io_properties.yaml`) and request costs;
//! - [`controller`]: compaction backlog → compaction shares;
//! - [`stats`]: per-class counters and histograms;
//! - `queue`: the run-time queue on each shard (wakers and timers).
//!
//! The class of a request comes from the CPU group of the task issuing it
//! ([`crate::groups`]): storage code never names a class, and a task
//! spawned in the Compaction group does compaction-class IO.
//! `DmaFile::with_class` overrides that for one file.
pub mod bucket;
pub mod controller;
pub mod disk;
pub mod dispatcher;
pub mod fair;
mod queue;
pub mod stats;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

pub use controller::BacklogController;
pub use disk::{DiskProperties, IoKind, IoProperties, IoPropertiesError};
pub use stats::{Histogram, IoClassStats, HISTOGRAM_BOUNDS_NS};

use crate::clock::{monotonic_now, Instant};
use crate::groups::{self, Group};

/// An IO priority class. The order is the tie-break order of the fair
/// queue: on equal standing, queries go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IoClass {
    /// Reads serving client requests.
    Query,
    /// Commitlog writes and syncs, which clients wait on.
    Commitlog,
    /// Memtable flushes.
    Flush,
    /// Compaction reads and writes.
    Compaction,
    /// Streaming (repair, bootstrap, decommission).
    Streaming,
    /// Everything else in the background (scrubs, snapshots, cleanup).
    Maintenance,
}

impl IoClass {
    /// Every class, in index order.
    pub const ALL: [IoClass; 6] = [
        IoClass::Query,
        IoClass::Commitlog,
        IoClass::Flush,
        IoClass::Compaction,
        IoClass::Streaming,
        IoClass::Maintenance,
    ];

    /// Number of classes.
    pub const COUNT: usize = IoClass::ALL.len();

    /// The class's name, as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            IoClass::Query => "query",
            IoClass::Commitlog => "commitlog",
            IoClass::Flush => "flush",
            IoClass::Compaction => "compaction",
            IoClass::Streaming => "streaming",
            IoClass::Maintenance => "maintenance",
        }
    }

    /// The class's position in [`IoClass::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether a client waits on this class's requests: foreground
    /// requests get room in the disk kept free of background work and may
    /// run a little ahead of the token bucket (see `dispatcher.rs`).
    pub fn is_foreground(self) -> bool {
        matches!(self, IoClass::Query | IoClass::Commitlog)
    }

    /// The shares a class starts with.
    pub fn default_shares(self) -> u32 {
        match self {
            IoClass::Query | IoClass::Commitlog => 1000,
            IoClass::Flush => 400,
            IoClass::Compaction | IoClass::Streaming => 200,
            IoClass::Maintenance => 100,
        }
    }
}

/// How the IO scheduler runs; set once per process with [`configure`].
#[derive(Debug, Clone)]
pub struct IoConfig {
    /// The disk model requests are charged against.
    pub disk: DiskProperties,
    /// Shares per class, indexed by [`IoClass::index`].
    pub shares: [u32; IoClass::COUNT],
    /// Disk time a shard keeps in flight at most, and the burst the shared
    /// bucket holds: the longest a request should wait inside the disk.
    pub latency_goal: Duration,
    /// Compaction backlog → compaction shares.
    pub compaction_controller: BacklogController,
    /// Whether requests are scheduled at all. `false` sends every request
    /// straight to the disk (counted, not queued): the baseline that shows
    /// what the scheduler buys, for benchmarks only.
    pub scheduling: bool,
}

impl Default for IoConfig {
    fn default() -> Self {
        IoConfig {
            disk: DiskProperties::conservative_default(),
            shares: IoClass::ALL.map(IoClass::default_shares),
            latency_goal: Duration::from_micros(1500),
            compaction_controller: BacklogController::default(),
            scheduling: true,
        }
    }
}

/// Why the IO scheduler could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoConfigError {
    #[error("the IO scheduler is already configured (or already in use): configure it before the shards start")]
    AlreadyConfigured,
}

/// What all shards share: the configuration, the disk's token bucket,
/// and the epoch the bucket's clock counts from.
pub(crate) struct IoShared {
    config: IoConfig,
    bucket: bucket::TokenBucket,
    epoch: Instant,
}

impl IoShared {
    fn new(config: IoConfig) -> Self {
        let burst = u64::try_from(config.latency_goal.as_nanos()).unwrap_or(u64::MAX);
        IoShared {
            bucket: bucket::TokenBucket::new(burst.max(1)),
            config,
            epoch: monotonic_now(),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

static SHARED: OnceLock<IoShared> = OnceLock::new();

thread_local! {
    /// The queue of the executor running on this thread, with its id (a
    /// thread may run several executors one after the other).
    static SHARD_QUEUE: RefCell<Option<(usize, Rc<queue::ShardQueue>)>> = const { RefCell::new(None) };
}

/// Sets the process's IO configuration. Call it once, before any shard
/// does IO; without it the defaults (conservative disk model) apply.
pub fn configure(config: IoConfig) -> Result<(), IoConfigError> {
    let mut fresh = Some(config);
    SHARED.get_or_init(|| IoShared::new(fresh.take().expect("taken once")));
    match fresh {
        None => Ok(()),
        Some(_) => Err(IoConfigError::AlreadyConfigured),
    }
}

/// The process's IO configuration.
pub fn config() -> &'static IoConfig {
    &shared().config
}

fn shared() -> &'static IoShared {
    SHARED.get_or_init(|| IoShared::new(IoConfig::default()))
}

fn shard_queue() -> Rc<queue::ShardQueue> {
    let executor_id = glommio::executor().id();
    let existing = SHARD_QUEUE.with(|cell| {
        cell.borrow()
            .as_ref()
            .filter(|(id, _)| *id == executor_id)
            .map(|(_, queue)| queue.clone())
    });
    existing.unwrap_or_else(|| {
        let queue = queue::ShardQueue::start(shared());
        SHARD_QUEUE.with(|cell| *cell.borrow_mut() = Some((executor_id, queue.clone())));
        queue
    })
}

/// Readies this shard's queue (run_shards calls it at shard start).
pub(crate) fn init_shard() {
    shard_queue();
}

/// The class an IO of `kind` issued by the current task gets: from its
/// CPU group (see [`Group::io_class`]); a task outside every group counts
/// as a statement.
pub fn current_class(kind: IoKind) -> IoClass {
    groups::current_group()
        .unwrap_or(Group::Statement)
        .io_class(kind)
}

/// Runs `io` (a not-yet-started IO future moving `bytes`) when this
/// shard's queue dispatches it in `class`.
pub async fn submit<F: Future>(class: IoClass, kind: IoKind, bytes: u64, io: F) -> F::Output {
    let queue = shard_queue();
    let cost = queue.cost_ns(kind, bytes);
    let mut permit = if config().scheduling {
        queue.acquire(class, cost).await
    } else {
        queue.bypass(class, cost)
    };
    let output = io.await;
    permit.set_bytes(bytes);
    output
}

/// This shard's per-class IO statistics, in [`IoClass::ALL`] order.
pub fn io_stats() -> Vec<IoClassStats> {
    shard_queue().stats()
}

/// Sets a class's shares on this shard.
pub fn set_class_shares(class: IoClass, shares: u32) {
    shard_queue().set_shares(class, shares);
}

/// Tells the scheduler how many bytes compaction still has to do on this
/// shard. Sets the shares of the Compaction IO class and of the Compaction
/// CPU group from the configured curve; returns the shares set.
pub fn set_compaction_backlog(backlog_bytes: u64) -> u32 {
    let shares = config().compaction_controller.shares_for(backlog_bytes);
    set_class_shares(IoClass::Compaction, shares);
    groups::set_group_shares(Group::Compaction, shares as usize);
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::spawn_in;

    fn ops(class: IoClass) -> u64 {
        io_stats()[class.index()].ops
    }

    /// More requests than the bucket's burst: they wait for tokens, the
    /// timer task steps the queue, and every one completes.
    async fn flood_and_drain() {
        let writes: Vec<_> = (0..40)
            .map(|_| {
                spawn_in(Group::Compaction, async {
                    let bytes = crate::io::MAX_IO_BYTES as u64;
                    submit(current_class(IoKind::Write), IoKind::Write, bytes, async {}).await
                })
            })
            .collect();
        let query = spawn_in(Group::Statement, async {
            submit(current_class(IoKind::Read), IoKind::Read, 4096, async {}).await
        });
        for write in writes {
            write.await;
        }
        query.await;
        assert_eq!(ops(IoClass::Compaction), 40);
        assert_eq!(ops(IoClass::Query), 1);
        let stats = io_stats();
        assert!(stats
            .iter()
            .all(|s| s.in_flight == 0 && s.queue_length == 0));
        // Some of them had to queue for tokens.
        let waited = &stats[IoClass::Compaction.index()].queued_time;
        assert!(waited.counts[1..].iter().sum::<u64>() > 0, "{waited:?}");
    }

    #[test]
    fn queued_requests_drain_on_successive_executors_of_one_thread() {
        for _ in 0..2 {
            let executor = glommio::LocalExecutorBuilder::default()
                .make()
                .expect("executor");
            executor.run(flood_and_drain());
        }
    }

    #[test]
    fn a_dropped_waiter_leaves_the_queue() {
        let executor = glommio::LocalExecutorBuilder::default()
            .make()
            .expect("executor");
        executor.run(async {
            let big = crate::io::MAX_IO_BYTES as u64;
            let waiting: Vec<_> = (0..40)
                .map(|_| {
                    crate::spawn_local_task(submit(IoClass::Flush, IoKind::Write, big, async {}))
                })
                .collect();
            crate::sleep(Duration::from_micros(100)).await;
            // Dropping a task cancels it the next time the executor runs it.
            drop(waiting);
            crate::sleep(Duration::from_millis(1)).await;
            let stats = &io_stats()[IoClass::Flush.index()];
            assert_eq!((stats.queue_length, stats.in_flight), (0, 0));
            submit(IoClass::Flush, IoKind::Write, big, async {}).await;
            assert!(ops(IoClass::Flush) >= 1);
        });
    }
}
