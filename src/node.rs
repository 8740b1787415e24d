//! Starting a node: logging, directories, the node's identity, the shards,
//! and an orderly stop on SIGINT/SIGTERM.
//!
//! Startup order matters: the schema is loaded before any shard starts, so
//! every shard begins with the same snapshot; listeners are bound on every
//! shard before the node reports itself ready; a stop first closes the
//! listeners, then waits for requests in flight, then exits.
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cluster::{local, migration, StorageProxy};
use cql::processor::{ProcessorConfig, QueryProcessor};
use cql::server::{CqlServer, RequestObserver, ServerConfig};
use cql::system::NodeInfo;
use scheduler::net::TcpListener;
use scheduler::{run_shards, spawn_in, Group, ShardSetConfig};
use serde::{Deserialize, Serialize};
use storage::schema::Schema;

use crate::api::ApiServer;
use crate::config::{CommitlogSync, Config};
use crate::metrics::{self, MetricsRegistry, MetricsServer, ShardMetrics, StatementKind};

/// How long a stopping node waits for requests in flight.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often shards refresh gauges and check for a stop.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(50);

/// The node's persistent identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeIdentity {
    host_id: uuid::Uuid,
    tokens: Vec<i64>,
}

/// Everything every shard needs to start, shared read-only.
struct NodeShared {
    config: Config,
    schema: Arc<Schema>,
    node: NodeInfo,
    data_dir: PathBuf,
    stop: Arc<AtomicBool>,
    shard_count: usize,
    /// Shards whose CQL server is installed; listeners open only when all are.
    ready_shards: AtomicUsize,
}

/// Runs the node until SIGINT or SIGTERM.
pub fn run(config: Config) -> anyhow::Result<()> {
    let data_dir = config
        .data_file_directories
        .first()
        .cloned()
        .context("data_file_directories is empty")?;
    for dir in config
        .data_file_directories
        .iter()
        .chain([&config.commitlog_directory])
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create directory {}", dir.display()))?;
    }
    crate::disk_model::configure_io_scheduler(&config)?;
    let schema = migration::load_schema(&data_dir).context("load schema")?;
    check_commitlog_shards(&config.commitlog_directory, config.effective_smp() as usize)?;
    let identity = load_identity(&data_dir, config.num_tokens)?;
    let shard_count = config.effective_smp() as usize;
    let rpc_address: IpAddr = config
        .rpc_address
        .parse()
        .context("rpc_address is not an IP address")?;
    let mut node = NodeInfo::single(
        &config.cluster_name,
        rpc_address,
        config.native_transport_port,
        identity.host_id,
        identity.tokens.clone(),
    );
    node.broadcast_address = config
        .effective_broadcast_address()
        .parse()
        .context("broadcast_address is not an IP address")?;
    node.rpc_address = config
        .effective_broadcast_rpc_address()
        .parse()
        .context("broadcast_rpc_address is not an IP address")?;
    node.listen_address = config
        .listen_address
        .parse()
        .context("listen_address is not an IP address")?;
    node.data_center = config.dc.clone();
    node.rack = config.rack.clone();
    node.gossip_generation = i32::try_from(scheduler::clock::now_micros() / 1_000_000).unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("install signal handler")?;
    }
    tracing::info!(
        shards = shard_count,
        cql = %format!("{}:{}", config.rpc_address, config.native_transport_port),
        data = %data_dir.display(),
        keyspaces = schema.keyspaces.len(),
        "starting tessera"
    );
    let shared = Arc::new(NodeShared {
        schema: Arc::new(schema),
        node,
        data_dir,
        stop,
        shard_count,
        ready_shards: AtomicUsize::new(0),
        config,
    });
    let mut shard_set = ShardSetConfig::new(shard_count);
    shard_set.pin = shared.config.pin_shards;
    ensure_memlock_limit(shard_count, shard_set.io_memory_bytes);
    if !shared.config.transparent_huge_pages {
        disable_transparent_huge_pages();
    }
    let results = run_shards(shard_set, move |shard| {
        let shared = shared.clone();
        async move { run_shard(shard, shared).await.map_err(|e| format!("{e:#}")) }
    })?;
    for (shard, result) in results.into_iter().enumerate() {
        if let Err(message) = result {
            anyhow::bail!("shard {shard}: {message}");
        }
    }
    tracing::info!("tessera stopped");
    Ok(())
}

async fn run_shard(shard: usize, shared: Arc<NodeShared>) -> anyhow::Result<()> {
    let config = &shared.config;
    local::init(shared.schema.clone());
    // Load SSTables and replay the log before the ready barrier: no shard
    // listens until every shard has its data back.
    let opened = async {
        open_storage(shard, &shared).await?;
        open_commitlog(shard, config).await
    };
    if let Err(error) = opened.await {
        // The other shards wait for this one at the ready barrier: stop them.
        shared.stop.store(true, Ordering::Relaxed);
        return Err(error);
    }
    let proxy = StorageProxy::new(shared.shard_count);
    let processor = Rc::new(QueryProcessor::new(
        proxy,
        ProcessorConfig {
            data_dir: shared.data_dir.clone(),
            read_timeout: config.read_request_timeout(),
            write_timeout: config.write_request_timeout(),
            range_timeout: config.range_request_timeout(),
            truncate_timeout: config.truncate_request_timeout(),
            schema_timeout: config.request_timeout(),
            node: shared.node.clone(),
        },
    ));
    let shard_metrics = metrics::shard(u32::try_from(shard).unwrap_or(u32::MAX));
    let server = CqlServer::install(
        processor,
        ServerConfig {
            max_frame_bytes: config.native_transport_max_frame_size_bytes(),
            shard_aware_port: config.native_shard_aware_transport_port,
        },
        Rc::new(Observer(shard_metrics.clone())),
    );
    // A connection accepted on one shard may be handed to any other (the
    // shard-aware port), so no shard listens before every shard can serve.
    shared.ready_shards.fetch_add(1, Ordering::AcqRel);
    while shared.ready_shards.load(Ordering::Acquire) < shared.shard_count {
        if shared.stop.load(Ordering::Relaxed) {
            // Another shard failed to start (or a signal came early).
            local::close_commitlog()
                .await
                .context("close the commitlog")?;
            return Ok(());
        }
        scheduler::sleep(Duration::from_millis(1)).await;
    }
    let cql_addr = socket_addr(&config.rpc_address, config.native_transport_port)?;
    let listener = TcpListener::bind(cql_addr)
        .map_err(|e| anyhow::anyhow!("listen for CQL on {cql_addr}: {e}"))?;
    // Accept loops own their listeners: dropping a loop's task closes its
    // socket, which is how a stopping node stops accepting. They run in the
    // Statement group, and so do the connection tasks they spawn: request
    // handling gets the Statement CPU shares and its reads the query class.
    let mut acceptors = vec![spawn_in(Group::Statement, server.clone().serve(listener))];
    if shard == 0 {
        let aware_addr = socket_addr(
            &config.rpc_address,
            config.native_shard_aware_transport_port,
        )?;
        let aware = TcpListener::bind(aware_addr)
            .map_err(|e| anyhow::anyhow!("listen for shard-aware CQL on {aware_addr}: {e}"))?;
        acceptors.push(spawn_in(
            Group::Statement,
            server.clone().serve_shard_aware(aware, shared.shard_count),
        ));
        let metrics_addr = socket_addr(
            config.effective_prometheus_address(),
            config.prometheus_port,
        )?;
        let metrics_server = MetricsServer::bind(metrics_addr, MetricsRegistry::global().clone())
            .with_context(|| format!("listen for metrics on {metrics_addr}"))?;
        scheduler::spawn_local(async move {
            if let Err(error) = metrics_server.run().await {
                tracing::error!(%error, "metrics server failed");
            }
        });
        let api_addr = crate::api::address(config)?;
        let api_server = ApiServer::bind(api_addr)
            .with_context(|| format!("listen for the REST API on {api_addr}"))?;
        // Operator requests are background work: they do not compete with
        // statements for CPU (their flushes and compactions run in their own groups).
        scheduler::spawn_detached_in(Group::Maintenance, async move {
            if let Err(error) = api_server.run().await {
                tracing::error!(%error, "REST API server failed");
            }
        });
        tracing::info!(%cql_addr, %aware_addr, %metrics_addr, %api_addr, "listening");
    }
    while !shared.stop.load(Ordering::Relaxed) {
        refresh_gauges(&shard_metrics);
        scheduler::sleep(HOUSEKEEPING_INTERVAL).await;
    }
    if shard == 0 {
        tracing::info!("stopping: no new connections, finishing requests in flight");
    }
    drop(acceptors);
    server.stop(STOP_GRACE).await;
    // Requests are done: write the memtables to SSTables (so the next start
    // replays little), then make everything appended durable.
    if let Err(error) = local::flush_all().await {
        tracing::error!(shard, %error, "flush at stop failed; the commitlog keeps the data");
    }
    local::close_commitlog()
        .await
        .context("close the commitlog")?;
    Ok(())
}

/// Opens this shard's tables in the data directory (their SSTables).
async fn open_storage(shard: usize, shared: &NodeShared) -> anyhow::Result<()> {
    let config = &shared.config;
    let started = std::time::Instant::now();
    let storage = local::StorageConfig {
        data_dir: shared.data_dir.clone(),
        shard: u32::try_from(shard).context("shard id fits in u32")?,
        shard_count: u32::try_from(shared.shard_count).context("shard count fits in u32")?,
        memtable_limit_bytes: memtable_limit_per_shard(config, shared.shard_count),
    };
    let limit = storage.memtable_limit_bytes;
    if let Some(mb) = config.chunk_cache_size_in_mb {
        let per_shard = (mb << 20) / shared.shard_count.max(1) as u64;
        storage::sstable::ChunkCache::shard()
            .set_capacity_bytes(usize::try_from(per_shard).unwrap_or(usize::MAX));
    }
    let report = local::open_storage(storage)
        .await
        .with_context(|| format!("open tables in {}", shared.data_dir.display()))?;
    tracing::info!(
        shard,
        sstables = report.opened,
        incomplete_removed = report.incomplete_removed,
        quarantined = report.quarantined,
        memtable_limit_mb = limit >> 20,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "tables opened"
    );
    Ok(())
}

/// Memtable bytes each shard may hold before flushing: the configured
/// total, or `memtable_space_fraction` of the node's memory (the `memory`
/// setting, or the machine's), split evenly between shards.
fn memtable_limit_per_shard(config: &Config, shard_count: usize) -> usize {
    let total = match config.memtable_total_space_in_mb {
        Some(mb) => mb << 20,
        None => {
            let memory = config
                .memory_bytes()
                .ok()
                .flatten()
                .unwrap_or_else(physical_memory_bytes);
            (memory as f64 * config.memtable_space_fraction) as u64
        }
    };
    let per_shard = total / shard_count.max(1) as u64;
    usize::try_from(per_shard)
        .unwrap_or(usize::MAX)
        .max(1 << 20)
}

/// The machine's physical memory, bytes (1 GiB if the OS does not say).
fn physical_memory_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    match (u64::try_from(pages), u64::try_from(page_size)) {
        (Ok(pages), Ok(size)) if pages > 0 && size > 0 => pages * size,
        _ => 1 << 30,
    }
}

/// Opens this shard's commitlog in the commitlog directory (segment names
/// carry the shard id) and replays it into the memtables. Runs in the
/// Commitlog group, so the log's writer task (spawned while opening) and
/// its IO stay there.
async fn open_commitlog(shard: usize, config: &Config) -> anyhow::Result<()> {
    let shard_id = u32::try_from(shard).context("shard id fits in u32")?;
    let started = std::time::Instant::now();
    let directory = config.commitlog_directory.clone();
    let log_config = commitlog_config(config);
    let summary = spawn_in(Group::Commitlog, async move {
        local::open_commitlog(&directory, shard_id, log_config).await
    })
    .await
    .with_context(|| format!("open commitlog in {}", config.commitlog_directory.display()))?;
    tracing::info!(
        shard,
        segments = summary.log.segments_replayed,
        entries = summary.log.entries_replayed,
        bytes = summary.log.bytes_replayed,
        mutations_applied = summary.mutations_applied,
        dropped_table_mutations = summary.unknown_table_skipped,
        truncations = summary.truncations,
        undecodable = summary.undecodable,
        already_flushed = summary.already_flushed,
        corrupt_blocks = summary.log.corrupt_blocks,
        torn_blocks = summary.log.torn_blocks,
        corrupt_entries = summary.log.corrupt_entries,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "commitlog replayed"
    );
    if summary.mutations_applied > 0 {
        // Write what replay rebuilt to SSTables, so its segments can go.
        scheduler::spawn_detached_in(scheduler::Group::Flush, async move {
            if let Err(error) = local::flush_all().await {
                tracing::error!(shard, %error, "flush after replay failed");
            }
        });
    }
    Ok(())
}

/// Refuses to start when the commitlog was written by a different number
/// of shards. Each shard replays only its own segments, and which shard
/// owns a token depends on the shard count: with another count, replayed
/// writes would land on shards that never read them, or not be replayed.
fn check_commitlog_shards(dir: &Path, shard_count: usize) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    };
    let mut highest: Option<usize> = None;
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        if let Some(shard) = segment_shard(&entry.file_name().to_string_lossy()) {
            highest = highest.max(Some(shard));
        }
    }
    match highest {
        Some(highest) if highest + 1 != shard_count => anyhow::bail!(
            "the commitlog in {} was written by {} shards but the node starts {shard_count}; \
             start with --smp {} (a change of shard count needs resharding, not supported yet)",
            dir.display(),
            highest + 1,
            highest + 1
        ),
        _ => Ok(()),
    }
}

/// The shard id in a commitlog segment's name, `CommitLog-<shard>-<id>.log`.
fn segment_shard(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("CommitLog-")?.strip_suffix(".log")?;
    let (shard, id) = rest.split_once('-')?;
    id.parse::<u64>().ok()?;
    shard.parse().ok()
}

/// The commitlog settings of the node's configuration.
fn commitlog_config(config: &Config) -> storage::commitlog::Config {
    use storage::commitlog::{Config as LogConfig, SyncMode};
    let sync = match config.commitlog_sync {
        CommitlogSync::Batch => SyncMode::Batch,
        CommitlogSync::Periodic => {
            SyncMode::Periodic(Duration::from_millis(config.commitlog_sync_period_in_ms))
        }
    };
    let defaults = LogConfig::default();
    LogConfig {
        segment_bytes: config.commitlog_segment_size_in_mb << 20,
        sync,
        total_space_bytes: config
            .commitlog_total_space_in_mb
            .map_or(defaults.total_space_bytes, |mb| mb << 20),
    }
}

fn refresh_gauges(metrics: &ShardMetrics) {
    metrics.set_io_queue(scheduler::io_stats());
    let (memory, stats) = local::with_db(|db| (db.memory_bytes(), db.stats()));
    metrics.set_memtable_bytes(memory as u64);
    metrics.set_rows(stats.rows_read, stats.rows_written);
    let tables = local::table_stats();
    let flush = local::flush_stats();
    metrics.set_storage(
        [
            tables.flushes,
            tables.flush_failures,
            tables.flushed_bytes,
            tables.sstable_reads,
            tables.sstable_read_errors,
            tables.compactions,
            tables.compaction_failures,
            tables.compacted_bytes_in,
            tables.compacted_bytes_out,
            flush.write_stalls,
        ],
        local::sstable_count(),
    );
    let cache = storage::sstable::ChunkCache::shard().stats();
    metrics.set_chunk_cache(
        [cache.hits, cache.misses, cache.evictions],
        cache.held_bytes,
    );
    let proxy = local::proxy_stats();
    metrics.set_proxy_requests(proxy.local_requests, proxy.forwarded_requests);
    if let Some(log) = local::commitlog_stats() {
        metrics.set_commitlog([
            log.appends,
            log.bytes_appended,
            log.syncs,
            log.segments_created,
            log.segments_recycled,
        ]);
    }
}

pub(crate) fn socket_addr(address: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let ip: IpAddr = address
        .parse()
        .with_context(|| format!("'{address}' is not an IP address"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Loads the node's host id and tokens, creating them on first start.
fn load_identity(data_dir: &Path, num_tokens: u32) -> anyhow::Result<NodeIdentity> {
    let path = data_dir.join("node.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("parse {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut tokens: Vec<i64> = (0..num_tokens.max(1))
                .map(|_| {
                    i64::from_be_bytes(
                        uuid::Uuid::new_v4().as_bytes()[..8]
                            .try_into()
                            .expect("8 bytes"),
                    )
                })
                .collect();
            tokens.sort_unstable();
            let identity = NodeIdentity {
                host_id: uuid::Uuid::new_v4(),
                tokens,
            };
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&identity)?)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(identity)
        }
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Turns transparent huge pages off for this process (unless
/// `transparent_huge_pages` is set). The allocator asks for them on its
/// large regions, and the first touch of such a page zeroes
/// 2 MiB at once and may compact memory first: measured here, a shard held
/// for 5-10 ms while a compaction's output filter and summary were encoded,
/// the reads queued behind it. Small pages fault a few microseconds at a
/// time, spread over the work. Failing to turn them off is logged, not fatal.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes
    // nothing but this process's huge-page policy.
    let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if result == 0 {
        tracing::info!("transparent huge pages off for this process");
    } else {
        let error = std::io::Error::last_os_error();
        tracing::warn!(%error, "could not turn transparent huge pages off; a huge-page fault may hold a shard for milliseconds");
    }
}

/// io_uring registers IO buffers in locked memory. Raise the limit to what
/// the shards need when we may; say what happens either way.
fn ensure_memlock_limit(shards: usize, io_memory_bytes: usize) {
    let needed = (shards * io_memory_bytes) as u64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; failure is reported
    // through the return value.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        tracing::warn!(
            "cannot read RLIMIT_MEMLOCK; io_uring may fall back to unregistered buffers"
        );
        return;
    }
    if limit.rlim_cur >= needed {
        tracing::info!(
            limit_bytes = limit.rlim_cur,
            needed_bytes = needed,
            "locked-memory limit is enough for the shards' IO buffers"
        );
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: needed.max(limit.rlim_cur),
        rlim_max: needed.max(limit.rlim_max),
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this
    // process's limit; failure is reported through the return value.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } == 0 {
        tracing::info!(
            limit_bytes = needed,
            "raised the locked-memory limit (RLIMIT_MEMLOCK) for io_uring buffers"
        );
    } else {
        tracing::warn!(
            limit_bytes = limit.rlim_cur,
            needed_bytes = needed,
            "cannot raise RLIMIT_MEMLOCK: io_uring falls back to unregistered buffers; \
             raise `ulimit -l` (or LimitMEMLOCK in the systemd unit)"
        );
    }
}

/// Counts requests into this shard's metrics.
struct Observer(ShardMetrics);

impl RequestObserver for Observer {
    fn request(&self, opcode: u8) {
        self.0.request(opcode);
    }

    fn statement(&self, kind: &'static str) {
        let kind = match kind {
            "select" => StatementKind::Select,
            "insert" => StatementKind::Insert,
            "update" => StatementKind::Update,
            "delete" => StatementKind::Delete,
            "batch" => StatementKind::Batch,
            "ddl" => StatementKind::Ddl,
            "use" => StatementKind::Use,
            _ => StatementKind::Other,
        };
        self.0.statement(kind);
    }

    fn error(&self, code: i32) {
        self.0.error(code as u32);
    }

    fn latency(&self, elapsed: Duration) {
        self.0.observe_latency(elapsed);
    }

    fn connection_opened(&self) {
        self.0.connection_opened();
    }

    fn connection_closed(&self) {
        self.0.connection_closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_give_their_shard() {
        assert_eq!(segment_shard("CommitLog-3-17.log"), Some(3));
        assert_eq!(segment_shard("CommitLog-3-17.log.tmp"), None);
        assert_eq!(segment_shard("CommitLog-x-17.log"), None);
        assert_eq!(segment_shard(".tessera-dma-probe"), None);
    }

    #[test]
    fn a_commitlog_of_another_shard_count_is_refused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        assert!(check_commitlog_shards(&dir.path().join("missing"), 2).is_ok());
        assert!(check_commitlog_shards(dir.path(), 2).is_ok(), "empty");
        for name in ["CommitLog-0-1.log", "CommitLog-1-1.log", "other.txt"] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        assert!(check_commitlog_shards(dir.path(), 2).is_ok());
        let error = check_commitlog_shards(dir.path(), 3).expect_err("3 shards refused");
        assert!(error.to_string().contains("--smp 2"), "{error}");
        assert!(check_commitlog_shards(dir.path(), 1).is_err());
    }
}
