//! Starting the shards: one glommio `LocalExecutor` per shard, pinned to its
//! own core when asked, joined into a full message mesh before any user code
//! runs so that `smp::submit_to` works from the first line of the shard body.
//!
//! Shard ids are the executors' places in the mesh (0..n), which is the id
//! sharding, shard-aware ports and metrics use.
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::smp::{self, Job};

/// Messages a shard may have queued towards one other shard before the
/// sender waits. Bounded so a slow shard pushes back on its callers.
const MESH_CHANNEL_CAPACITY: usize = 1024;

/// How often a shard whose body is done checks whether its peers are done too.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(1);

/// How the shard set is built.
#[derive(Debug, Clone)]
pub struct ShardSetConfig {
    /// Number of shards (executors).
    pub shards: usize,
    /// Pin each shard to its own CPU (MaxSpread); otherwise let the kernel place them.
    pub pin: bool,
    /// Thread name prefix.
    pub name: String,
    /// Registered IO buffer memory per executor; glommio falls back to
    /// unregistered buffers when the memlock limit is too low.
    pub io_memory_bytes: usize,
}

impl ShardSetConfig {
    /// `shards` unpinned shards with default settings.
    pub fn new(shards: usize) -> Self {
        ShardSetConfig {
            shards,
            pin: false,
            name: "shard".to_string(),
            io_memory_bytes: 2 << 20,
        }
    }
}

/// Why the shard set could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("cannot start {shards} shards: {message}")]
    Start { shards: usize, message: String },
    #[error("shard {shard} failed: {message}")]
    ShardFailed { shard: usize, message: String },
    #[error("a shard count of zero is not a shard set")]
    NoShards,
}

/// Runs `body(shard_id)` on every shard and waits for all of them; returns
/// their results ordered by shard id.
pub fn run_shards<G, F, T>(config: ShardSetConfig, body: G) -> Result<Vec<T>, RuntimeError>
where
    G: Fn(usize) -> F + Clone + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    if config.shards == 0 {
        return Err(RuntimeError::NoShards);
    }
    let placement = if config.pin {
        PoolPlacement::MaxSpread(config.shards, None)
    } else {
        PoolPlacement::Unbound(config.shards)
    };
    let mesh = MeshBuilder::<Job, _>::full(config.shards, MESH_CHANNEL_CAPACITY);
    let finished = Arc::new(AtomicUsize::new(0));
    let shard_count = config.shards;
    let handles = LocalExecutorPoolBuilder::new(placement)
        .name(&config.name)
        .io_memory(config.io_memory_bytes)
        .on_all_shards(move || {
            let mesh = mesh.clone();
            let body = body.clone();
            let finished = finished.clone();
            async move {
                // The groups and the IO queue exist before any user code,
                // so the first task spawned in a group finds its queue.
                crate::groups::init_shard();
                crate::ioqueue::init_shard();
                let shard = smp::join_mesh(mesh).await;
                let value = body(shard).await;
                // A shard must keep answering its peers' jobs until every
                // shard's body is done, or a late job would find it gone.
                finished.fetch_add(1, Ordering::AcqRel);
                while finished.load(Ordering::Acquire) < shard_count {
                    glommio::timer::sleep(EXIT_POLL_INTERVAL).await;
                }
                (shard, value)
            }
        })
        .map_err(|source| RuntimeError::Start {
            shards: config.shards,
            message: source.to_string(),
        })?;
    let mut results = Vec::with_capacity(config.shards);
    for (index, joined) in handles.join_all().into_iter().enumerate() {
        match joined {
            Ok(pair) => results.push(pair),
            Err(error) => {
                return Err(RuntimeError::ShardFailed {
                    shard: index,
                    message: error.to_string(),
                })
            }
        }
    }
    results.sort_by_key(|(shard, _)| *shard);
    Ok(results.into_iter().map(|(_, value)| value).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    /// glommio 0.9.0 parked an executor that was preempted before it ran
    /// anything, though tasks were runnable; with no IO or timer pending
    /// it never woke (scheduler/vendor/README.md). A preemption timer of a
    /// few microseconds makes that race happen on almost every round.
    #[test]
    fn an_executor_preempted_before_running_anything_does_not_park() {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let executor = glommio::LocalExecutorBuilder::default()
                .preempt_timer(Duration::from_micros(5))
                .make()
                .expect("executor");
            executor.run(async {
                for round in 0..20_000_u32 {
                    let echoed = glommio::spawn_local(async move { round }).await;
                    assert_eq!(echoed, round);
                }
            });
            let _ = done.send(());
        });
        // A liveness bound, not a timing claim: the rounds take milliseconds.
        finished
            .recv_timeout(Duration::from_secs(120))
            .expect("the executor stopped with runnable tasks");
    }
}
