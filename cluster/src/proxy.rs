//! The storage proxy: the coordinator every statement executes through.
//!
//! It owns the question "which shard (and later, which replicas) hold this
//! data". On one node, a mutation or a single-partition read goes to the
//! shard that owns its token (`Sharder::shard_of`, the biased-token
//! round-robin that shard-aware drivers compute too), in one message; a
//! range scan asks every shard for its part and merges the answers in ring
//! order.
//!
//! Statements that arrive on the owning shard (the shard-aware drivers'
//! normal case) run inline with no message at all.
//!
//! Compare-and-set ([`StorageProxy::cas`]) is linearizable on one node:
//! the read, the condition check and the durable write run as one job on the
//! owning shard under a per-partition lock, so no other compare-and-set on
//! the partition can interleave.
//! A cluster replaces the inside of `cas` with Paxos rounds over the
//! replicas; its callers and its contract stay the same.
//!
//! Durability: the owning shard appends every mutation to its commitlog
//! ([`local::log_mutations`]) and answers only once the append returned,
//! which in `batch` sync mode means once the write is on disk. Every write,
//! conditional or not, is logged before it reaches the memtable.
use std::cell::Cell;
use std::collections::BTreeMap;

use futures_util::future::join_all;
use storage::model::{
    DecoratedKey, Mutation, PartitionRange, PartitionResult, SliceQuery, TableId,
};

use crate::error::ProxyError;
use crate::local;
use crate::token::Sharder;

/// What a compare-and-set found and did.
#[derive(Debug, Clone)]
pub struct CasOutcome {
    /// The partition as read before the decision (`None` when it has no
    /// live data in the slice read).
    pub current: Option<PartitionResult>,
    /// Whether the condition held and the mutations were applied.
    pub applied: bool,
}

thread_local! {
    /// The last write timestamp this shard gave a compare-and-set.
    static LAST_CAS_MICROS: Cell<i64> = const { Cell::new(i64::MIN) };
}

/// A write timestamp for a compare-and-set on this shard: never behind the
/// clock and strictly above every one given before, so two conditional
/// writes to a partition (e.g. a DELETE IF EXISTS followed by an INSERT IF
/// NOT EXISTS in the same microsecond) are always ordered as they ran. It
/// plays the part of the Paxos ballot.
fn next_cas_micros() -> i64 {
    LAST_CAS_MICROS.with(|last| {
        let next = scheduler::clock::now_micros().max(last.get().saturating_add(1));
        last.set(next);
        next
    })
}

/// The coordinator handle of one shard. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StorageProxy {
    sharder: Sharder,
}

impl StorageProxy {
    /// A proxy over `shard_count` shards with the default `ignore_msb`.
    pub fn new(shard_count: usize) -> Self {
        let count = u32::try_from(shard_count).expect("shard count fits in u32");
        StorageProxy {
            sharder: Sharder::with_default_ignore_msb(count),
        }
    }

    /// The sharding function.
    pub fn sharder(&self) -> &Sharder {
        &self.sharder
    }

    /// The shard that owns `token`.
    pub fn shard_of(&self, token: i64) -> usize {
        self.sharder.shard_of(token) as usize
    }

    /// The owner of `token`, counted as a local or forwarded request.
    fn route(&self, token: i64) -> usize {
        let shard = self.shard_of(token);
        local::count_request(shard == scheduler::smp::this_shard());
        shard
    }

    /// Applies mutations, each on the shard owning its partition, and waits
    /// for all of them.
    pub async fn mutate(&self, mutations: Vec<Mutation>) -> Result<(), ProxyError> {
        if let [mutation] = mutations.as_slice() {
            // The common single write: no grouping by shard, no join.
            let shard = self.route(mutation.key.token);
            let applied = scheduler::smp::submit_to(shard, move || async move {
                apply_logged(shard, mutations).await
            })
            .await;
            return applied.map_err(|source| ProxyError::Shard { shard, source })?;
        }
        let mut by_shard: BTreeMap<usize, Vec<Mutation>> = BTreeMap::new();
        for mutation in mutations {
            by_shard
                .entry(self.route(mutation.key.token))
                .or_default()
                .push(mutation);
        }
        let calls = by_shard.into_iter().map(|(shard, batch)| async move {
            let applied = scheduler::smp::submit_to(shard, move || async move {
                apply_logged(shard, batch).await
            })
            .await;
            applied.map_err(|source| ProxyError::Shard { shard, source })?
        });
        join_all(calls).await.into_iter().collect()
    }

    /// Reads one partition's slice on its owning shard.
    pub async fn read_partition(
        &self,
        table: TableId,
        key: DecoratedKey,
        slice: SliceQuery,
        now_secs: i32,
    ) -> Result<Option<PartitionResult>, ProxyError> {
        let shard = self.route(key.token);
        let read = scheduler::smp::submit_to(shard, move || async move {
            local::read_partition(table, &key, &slice, now_secs).await
        })
        .await;
        flatten(shard, read)
    }

    /// Compare-and-set on one partition: reads `slice` of `key`, asks
    /// `condition` whether the current data allows the write and, if it
    /// does, applies the mutations `mutations` builds for the write
    /// timestamp it is given. The operation runs on the owning shard under
    /// the partition's compare-and-set lock, from the read to the durable
    /// write, so compare-and-set operations on a partition are atomic and
    /// linearizable with respect to each other. (Plain writes to the same
    /// partition do not take the lock, as in Cassandra: mixing them with
    /// conditional writes gives no such guarantee.)
    ///
    /// Every mutation must be for `table` and `key`.
    pub async fn cas<C, M>(
        &self,
        table: TableId,
        key: DecoratedKey,
        slice: SliceQuery,
        now_secs: i32,
        condition: C,
        mutations: M,
    ) -> Result<CasOutcome, ProxyError>
    where
        C: FnOnce(Option<&PartitionResult>) -> bool + Send + 'static,
        M: FnOnce(i64) -> Vec<Mutation> + Send + 'static,
    {
        let shard = self.shard_of(key.token);
        let outcome = scheduler::smp::submit_to(shard, move || async move {
            let _lock = local::lock_partition(table, &key).await;
            let current = local::read_partition(table, &key, &slice, now_secs)
                .await
                .map_err(|source| ProxyError::Storage { shard, source })?;
            if !condition(current.as_ref()) {
                return Ok(CasOutcome {
                    current,
                    applied: false,
                });
            }
            let writes = mutations(next_cas_micros());
            // Writing any other partition here would escape the
            // atomicity the caller relies on.
            if writes.iter().any(|m| m.table != table || m.key != key) {
                return Err(ProxyError::CasOutsidePartition);
            }
            apply_logged(shard, writes).await?;
            Ok(CasOutcome {
                current,
                applied: true,
            })
        })
        .await;
        outcome.map_err(|source| ProxyError::Shard { shard, source })?
    }

    /// Reads the live partitions of `range` in ring order from every shard,
    /// at most `partition_limit` partitions and `slice.row_limit` rows.
    pub async fn scan(
        &self,
        table: TableId,
        range: PartitionRange,
        slice: SliceQuery,
        partition_limit: usize,
        now_secs: i32,
    ) -> Result<Vec<PartitionResult>, ProxyError> {
        let shards = self.sharder.shard_count() as usize;
        let calls = (0..shards).map(|shard| {
            let range = range.clone();
            let slice = slice.clone();
            async move {
                let part = scheduler::smp::submit_to(shard, move || async move {
                    // Boxed: a scan's state (a cursor per SSTable) would
                    // otherwise grow every request's future.
                    Box::pin(local::scan(
                        table,
                        &range,
                        &slice,
                        partition_limit,
                        now_secs,
                    ))
                    .await
                })
                .await;
                flatten(shard, part)
            }
        });
        let mut merged = Vec::new();
        for part in join_all(calls).await {
            merged.extend(part?);
        }
        // Each shard's part is in ring order; a stable sort merges them.
        merged.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(trim_to_limits(merged, &slice, partition_limit))
    }

    /// Drops all data of `table` on every shard.
    pub async fn truncate(&self, table: TableId) -> Result<(), ProxyError> {
        let shards = self.sharder.shard_count() as usize;
        let calls = (0..shards).map(|shard| async move {
            let done = scheduler::smp::submit_to(shard, move || async move {
                local::truncate_logged(table).await
            })
            .await;
            match done {
                Ok(Ok(())) => Ok(()),
                Ok(Err(local::TruncateError::Storage(source))) => {
                    Err(ProxyError::Storage { shard, source })
                }
                Ok(Err(local::TruncateError::Commitlog(source))) => {
                    Err(ProxyError::Commitlog { shard, source })
                }
                Err(source) => Err(ProxyError::Shard { shard, source }),
            }
        });
        join_all(calls).await.into_iter().collect()
    }
}

/// Writes `batch` to this shard's commitlog, then to its memtables.
async fn apply_logged(shard: usize, batch: Vec<Mutation>) -> Result<(), ProxyError> {
    // A write the memtables would refuse is not logged either.
    let unknown = local::with_db(|db| {
        batch
            .iter()
            .find(|m| db.table(m.table).is_none())
            .map(|m| m.table)
    });
    if let Some(table) = unknown {
        let source = storage::error::StorageError::UnknownTable { table };
        return Err(ProxyError::Storage { shard, source });
    }
    // Held back (not failed) while flushes cannot keep up with writes.
    local::wait_for_memtable_room().await;
    // Keeps the segments it appends to until the memtables hold the batch.
    let _in_flight = local::begin_write();
    let positions = local::log_mutations(&batch)
        .await
        .map_err(|source| ProxyError::Commitlog { shard, source })?;
    // A table dropped during the append refuses the write here; replay
    // skips it too, since the table is gone from the schema.
    local::apply_logged(&batch, &positions).map_err(|source| ProxyError::Storage { shard, source })
}

fn flatten<T>(
    shard: usize,
    result: Result<Result<T, storage::error::StorageError>, scheduler::smp::SmpError>,
) -> Result<T, ProxyError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(ProxyError::Storage { shard, source }),
        Err(source) => Err(ProxyError::Shard { shard, source }),
    }
}

/// Cuts merged scan results down to the partition and row limits the
/// shards each applied separately.
fn trim_to_limits(
    merged: Vec<PartitionResult>,
    slice: &SliceQuery,
    partition_limit: usize,
) -> Vec<PartitionResult> {
    let mut rows_left = slice.row_limit;
    let mut out = Vec::new();
    for mut partition in merged {
        if out.len() >= partition_limit || rows_left == 0 {
            break;
        }
        if partition.rows.len() > rows_left {
            partition.rows.truncate(rows_left);
        }
        rows_left -= partition.rows.len().max(1).min(rows_left);
        out.push(partition);
    }
    out
}
