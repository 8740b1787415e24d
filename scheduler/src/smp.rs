//! Cross-shard messaging: run a closure on another shard and await its answer.
//!
//! A shard owns its data; to reach data on another shard, code sends a job
//! there with [`submit_to`] and awaits the reply, never sharing a lock. Jobs
//! travel over glommio's bounded full mesh; each shard runs one receiver task
//! per peer that spawns every arriving job locally, so a receiver never blocks
//! on anything but its own queue and two shards sending to each other cannot
//! deadlock. Replies travel on a one-shot channel, not on the mesh.
//!
//! A job runs in the CPU group of the task that sent it (see
//! [`crate::groups`]), so a statement forwarded to the owning shard still
//! runs, and does its IO, as a statement there.
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use futures_channel::oneshot;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};

use crate::groups::{self, Group};

/// A unit of work sent to another shard: a `Send` closure that builds the
/// (shard-local, `!Send`) future to run there, and the group to run it in.
pub struct Job {
    group: Option<Group>,
    build: JobBuilder,
}

type JobBuilder = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

impl Job {
    /// A job that runs in the sending task's group.
    fn new(build: JobBuilder) -> Job {
        Job {
            group: groups::current_group(),
            build,
        }
    }
}

struct Mesh {
    shard: usize,
    shard_count: usize,
    senders: Senders<Job>,
}

thread_local! {
    static MESH: RefCell<Option<Rc<Mesh>>> = const { RefCell::new(None) };
}

/// Why a cross-shard call failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmpError {
    #[error("shard {shard} does not exist (shard count {shard_count})")]
    NoSuchShard { shard: usize, shard_count: usize },
    #[error("shard {shard} is shutting down")]
    ShardGone { shard: usize },
}

/// Joins this executor to the mesh and starts the receivers; returns the shard id.
pub(crate) async fn join_mesh(builder: MeshBuilder<Job, Full>) -> usize {
    let shard_count = builder.nr_peers();
    let (senders, mut receivers) = builder.join().await.expect("joining the shard mesh");
    let shard = senders.peer_id();
    // The mesh must be visible before any receiver runs: a peer's first job
    // may arrive (and call `this_shard`) as soon as a receiver is polled.
    MESH.with(|mesh| {
        *mesh.borrow_mut() = Some(Rc::new(Mesh {
            shard,
            shard_count,
            senders,
        }))
    });
    for (_, receiver) in receivers.streams() {
        glommio::spawn_local(async move {
            while let Some(job) = receiver.recv().await {
                match job.group {
                    Some(group) => groups::spawn_detached_in(group, run_job(job.build)),
                    None => {
                        glommio::spawn_local(run_job(job.build)).detach();
                    }
                }
            }
        })
        .detach();
    }
    shard
}

/// Runs a job from another shard. A job that panics (a bug) must not take
/// this shard down with it: its caller sees the reply channel close and gets
/// an error, and the panic is logged.
async fn run_job(job: JobBuilder) {
    if let Err(message) = crate::guard::guarded(async move { job().await }).await {
        tracing::error!(%message, "a cross-shard job panicked; its caller gets an error");
    }
}

fn mesh() -> Rc<Mesh> {
    MESH.with(|mesh| mesh.borrow().clone())
        .expect("smp is used only on a shard started by run_shards")
}

/// The id of the shard this code runs on.
pub fn this_shard() -> usize {
    mesh().shard
}

/// The number of shards.
pub fn shard_count() -> usize {
    mesh().shard_count
}

/// Runs `job` on `shard` and returns its result. On the calling shard itself
/// the job runs inline, with no message.
pub async fn submit_to<F, Fut, T>(shard: usize, job: F) -> Result<T, SmpError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let mesh = mesh();
    if shard == mesh.shard {
        return Ok(job().await);
    }
    if shard >= mesh.shard_count {
        return Err(SmpError::NoSuchShard {
            shard,
            shard_count: mesh.shard_count,
        });
    }
    let (reply_tx, reply_rx) = oneshot::channel();
    let envelope = Job::new(Box::new(move || {
        Box::pin(async move {
            // The caller may have gone away (deadline); its answer is then dropped.
            let _ = reply_tx.send(job().await);
        })
    }));
    if mesh.senders.send_to(shard, envelope).await.is_err() {
        return Err(SmpError::ShardGone { shard });
    }
    reply_rx.await.map_err(|_| SmpError::ShardGone { shard })
}

/// Sends `job` to `shard` without waiting for it to run.
pub async fn send_to<F, Fut>(shard: usize, job: F) -> Result<(), SmpError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let mesh = mesh();
    if shard == mesh.shard {
        glommio::spawn_local(job()).detach();
        return Ok(());
    }
    let envelope = Job::new(Box::new(move || Box::pin(job())));
    mesh.senders
        .send_to(shard, envelope)
        .await
        .map_err(|_| SmpError::ShardGone { shard })
}

/// Runs `job` on every shard and collects the results in shard order.
pub async fn submit_to_all<F, Fut, T>(job: F) -> Result<Vec<T>, SmpError>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let count = shard_count();
    let calls: Vec<_> = (0..count)
        .map(|shard| {
            let job = job.clone();
            submit_to(shard, job)
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    for call in calls {
        results.push(call.await?);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{run_shards, ShardSetConfig};

    #[test]
    fn jobs_run_on_the_shard_they_are_sent_to() {
        let seen = run_shards(ShardSetConfig::new(2), |shard| async move {
            let other = (shard + 1) % 2;
            let ran_on = submit_to(other, || async { this_shard() })
                .await
                .expect("peer shard answers");
            let all = submit_to_all(|| async { this_shard() })
                .await
                .expect("all shards answer");
            (ran_on, all)
        })
        .expect("shards run");
        assert_eq!(seen, vec![(1, vec![0, 1]), (0, vec![0, 1])]);
    }

    #[test]
    fn jobs_run_in_the_senders_group() {
        let seen = run_shards(ShardSetConfig::new(2), |shard| async move {
            let other = (shard + 1) % 2;
            let from_default = submit_to(other, || async { groups::current_group() })
                .await
                .expect("peer shard answers");
            let from_compaction = groups::spawn_in(Group::Compaction, async move {
                submit_to(other, || async { groups::current_group() }).await
            })
            .await
            .expect("peer shard answers");
            (from_default, from_compaction)
        })
        .expect("shards run");
        assert_eq!(seen, vec![(None, Some(Group::Compaction)); 2]);
    }

    #[test]
    fn a_missing_shard_is_an_error() {
        let result = run_shards(ShardSetConfig::new(1), |_| async move {
            submit_to(5, || async {}).await
        })
        .expect("shard runs");
        assert_eq!(
            result,
            vec![Err(SmpError::NoSuchShard {
                shard: 5,
                shard_count: 1
            })]
        );
    }
}
