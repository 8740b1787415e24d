//! What every engine benchmark shares: the keys and values written, the
//! one-table schema, starting the engine of one shard, and the insert loop.
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cluster::local::{self, StorageConfig};
use scheduler::ioqueue::{IoConfig, IoProperties};
use scheduler::{run_shards, ShardSetConfig};
use storage::commitlog::{self, SyncMode};
use storage::model::{Cell, DecoratedKey, Mutation, Row, TableId};
use storage::schema::{KeyspaceDef, OptionMap, Schema, TableDef, TableOptions};

/// Bytes of every key: 8 bytes of a hash of the sequence number, then the
/// number itself, so keys are unique and arrive in random order.
pub const KEY_BYTES: usize = 16;

/// SplitMix64: a cheap, well-mixed sequence for keys and values.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The key of write number `n`.
pub fn key(n: u64) -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    key[..8].copy_from_slice(&mix(n).to_be_bytes());
    key[8..].copy_from_slice(&n.to_be_bytes());
    key
}

/// The value of write number `n`: `len` bytes, half random and half zero,
/// so that compression has something to do but cannot make it vanish.
pub fn value(n: u64, len: usize) -> Vec<u8> {
    let mut value = vec![0u8; len];
    let mut state = mix(n ^ 0xA5A5_A5A5);
    for chunk in value[..len / 2].chunks_mut(8) {
        state = mix(state);
        chunk.copy_from_slice(&state.to_be_bytes()[..chunk.len()]);
    }
    value
}

/// User bytes of one write: key plus value.
pub fn user_bytes(value_bytes: usize) -> u64 {
    (KEY_BYTES + value_bytes) as u64
}

/// The table every benchmark writes: `bench.kv`, one partition per key,
/// one cell (column 0) per partition.
pub fn table_def(name: &str, compaction: OptionMap) -> TableDef {
    TableDef {
        keyspace: "bench".into(),
        name: name.into(),
        id: TableId::new_v4(),
        columns: Vec::new(),
        options: TableOptions {
            compaction,
            ..TableOptions::default()
        },
        next_column_id: 1,
        dropped_columns: Vec::new(),
        compact_storage: false,
    }
}

/// A schema holding `tables` in keyspace `bench`.
pub fn schema(tables: Vec<TableDef>) -> Arc<Schema> {
    let mut keyspace = KeyspaceDef::new("bench", BTreeMap::new(), true);
    for table in tables {
        keyspace.tables.insert(table.name.clone(), Arc::new(table));
    }
    let mut schema = Schema::default();
    schema.keyspaces.insert("bench".into(), keyspace);
    Arc::new(schema)
}

/// A compaction option map from `class` and extra pairs.
pub fn compaction_options(class: &str, extra: &[(&str, &str)]) -> OptionMap {
    let mut map = OptionMap::new();
    map.insert("class".into(), class.into());
    for (k, v) in extra {
        map.insert((*k).into(), (*v).into());
    }
    map
}

/// The mutation of write number `n` to `table`, written at `timestamp_us`.
pub fn mutation(table: TableId, n: u64, value_bytes: usize, timestamp_us: i64) -> Mutation {
    let key = key(n);
    let token = cluster::token::murmur3_token(&key);
    Mutation::new(table, DecoratedKey::new(token, key.to_vec())).with_row(
        &b""[..],
        Row::new().cell(0, Cell::live(timestamp_us, value(n, value_bytes))),
    )
}

/// The decorated key of write number `n`.
pub fn decorated_key(n: u64) -> DecoratedKey {
    let key = key(n);
    DecoratedKey::new(cluster::token::murmur3_token(&key), key.to_vec())
}

/// Where the engine keeps its files and how it logs.
pub struct EngineSetup {
    pub dir: PathBuf,
    pub memtable_limit_bytes: usize,
    /// `None`: no commitlog (memtable-only writes until flushed).
    pub sync: Option<SyncMode>,
}

/// Installs the shard's engine: schema, table directories under
/// `dir/data`, commitlog under `dir/commitlog`.
pub async fn start_engine(setup: &EngineSetup, schema: Arc<Schema>) -> anyhow::Result<()> {
    start_engine_on(setup, schema, 0, 1).await
}

/// [`start_engine`] on shard `shard` of `shard_count` (data directory shared,
/// a commitlog per shard).
pub async fn start_engine_on(
    setup: &EngineSetup,
    schema: Arc<Schema>,
    shard: u32,
    shard_count: u32,
) -> anyhow::Result<()> {
    local::init(schema);
    local::open_storage(StorageConfig {
        data_dir: setup.dir.join("data"),
        shard,
        shard_count,
        memtable_limit_bytes: setup.memtable_limit_bytes,
    })
    .await
    .context("open storage")?;
    if let Some(sync) = setup.sync {
        let config = commitlog::Config {
            sync,
            total_space_bytes: 1 << 30,
            ..commitlog::Config::default()
        };
        local::open_commitlog(&setup.dir.join("commitlog"), shard, config)
            .await
            .context("open commitlog")?;
    }
    Ok(())
}

/// Empties `dir` (a fresh run) and creates it.
pub fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))
}

/// Runs `body(shard)` on `shards` shards and returns their results, by shard.
pub fn on_shards<F, Fut, T>(shards: usize, body: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + 'static,
    T: Send + 'static,
{
    let config = ShardSetConfig {
        // Within the default 8 MiB of lockable memory, whatever the count.
        io_memory_bytes: (8 << 20) / shards.max(1),
        ..ShardSetConfig::new(shards)
    };
    run_shards(config, move |shard| body.clone()(shard))?
        .into_iter()
        .collect()
}

/// Runs `body` on one shard and returns its result.
pub fn on_shard<F, Fut, T>(body: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + 'static,
    T: Send + 'static,
{
    let config = ShardSetConfig {
        io_memory_bytes: 8 << 20,
        ..ShardSetConfig::new(1)
    };
    let mut results = run_shards(config, move |_| body.clone()())?;
    results.pop().context("one shard")?
}

/// Writes number `first..first + count` into `table` the way the node's
/// write path does (wait for memtable room, log, apply), from `concurrency`
/// writers. `timestamp_us(n)` gives each write's timestamp.
pub async fn insert(
    table: TableId,
    first: u64,
    count: u64,
    value_bytes: usize,
    concurrency: u64,
    timestamp_us: Rc<dyn Fn(u64) -> i64>,
) -> anyhow::Result<()> {
    let writers = (0..concurrency).map(|writer| {
        let timestamp_us = timestamp_us.clone();
        scheduler::spawn_in(scheduler::Group::Statement, async move {
            let mut n = first + writer;
            while n < first + count {
                local::wait_for_memtable_room().await;
                let m = mutation(table, n, value_bytes, timestamp_us(n));
                let m = std::slice::from_ref(&m);
                let positions = local::log_mutations(m).await?;
                local::apply_logged(m, &positions)?;
                n += concurrency;
                glommio::yield_if_needed().await;
            }
            anyhow::Ok(())
        })
    });
    let writers: Vec<_> = writers.collect();
    for writer in writers {
        writer.await?;
    }
    Ok(())
}

/// Flushes everything, then waits until no compaction is left to run.
pub async fn settle(table: TableId) -> anyhow::Result<()> {
    local::flush_all().await.context("flush")?;
    let table = local::table(table)?;
    loop {
        scheduler::sleep(Duration::from_millis(200)).await;
        let idle = table.compaction_backlog_bytes() == 0;
        if idle {
            return Ok(());
        }
    }
}

/// How the process's IO scheduler is set up.
#[derive(clap::Args, Debug, Clone)]
pub struct IoArgs {
    /// Schedule IO through the fair queue (`true`) or send it straight to the disk.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub io_scheduler: bool,
    /// The disk model `tessera io-tune` wrote; the conservative default without it.
    #[arg(long)]
    pub io_properties: Option<PathBuf>,
}

/// Configures the IO scheduler from `args` for files under `dir`; call
/// before the shard starts.
pub fn configure_io(args: &IoArgs, dir: &Path) -> anyhow::Result<()> {
    let mut config = IoConfig {
        scheduling: args.io_scheduler,
        ..IoConfig::default()
    };
    if let Some(path) = &args.io_properties {
        let properties = IoProperties::load(path)?;
        std::fs::create_dir_all(dir)?;
        config.disk = properties
            .disk_for(dir)
            .context("the IO properties file lists no disk")?
            .clone();
    }
    scheduler::ioqueue::configure(config)?;
    Ok(())
}

/// CPU seconds (user + system) this process has used so far, all threads.
pub fn process_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Megabytes (10^6 bytes) per second.
pub fn mb_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}
