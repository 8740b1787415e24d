//! The CQL load generator: prepared single-row INSERT or SELECT at a chosen
//! concurrency or at a fixed rate, on the `scylla` driver, against a node or
//! the do-nothing responder (`responder.rs`).
//!
//! A run goes in five steps:
//! 1. Connect one session (schema metadata off, so the node and the responder
//!    see the same connect-time queries).
//! 2. Unless `--no-schema`: create `bench.kv (k bigint PRIMARY KEY, v blob)`
//!    (`WITH --table-options` if given), and for `select` write every key in
//!    `0..rows` first (unless `--no-populate`). The `load` workload stops
//!    after writing them and prints its write rate.
//! 3. Warm up for `--warmup` seconds (connections, memtable, caches).
//! 4. Run the measured window for `--duration` seconds (or until `--max-ops`
//!    requests were issued, or until the process `--while-pid` exits), on keys
//!    drawn uniformly from `0..rows`; every latency goes into an HDR histogram.
//!    Two ways to issue requests:
//!    - closed loop (default): `--concurrency` request loops, each waiting
//!      for its answer before sending the next;
//!    - open loop (`--rate N`): a pacing thread schedules request `i` at
//!      `start + i / N` and hands it to the runtime at that time, whatever
//!      the earlier requests are doing; at most `--concurrency` are in flight
//!      (a request waits for a slot). Latency is measured from the request's
//!      scheduled time, not from when it was sent, so time a request spent
//!      waiting behind a slow server (for a slot, or because the client fell
//!      behind) counts: no coordinated omission. How late requests were sent
//!      is printed apart (`send_lag_us`); `--timeline` adds p50, p99 and max
//!      per second of the schedule, to see when a stall happened.
//! 5. Print ops/s, p50/p99/p99.9 latency, and the server's CPU seconds in the
//!    measured window (utime + stime of `--server-pid` from `/proc`), so a run
//!    that is bound by this client still shows what each operation cost the
//!    server. With `--metrics ADDR` it also scrapes the node's Prometheus
//!    endpoint before and after the window and prints what changed: chunk
//!    cache hits and misses, SSTable reads, compaction bytes, and per IO class
//!    the requests, bytes and their mean time queued and in the disk.
//!
//! Ops per server-CPU-second is the figure the closed-loop runs compare: it
//! does not depend on whether the server was saturated, only on how much work
//! an operation made it do. The open-loop runs compare latency at one rate.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;

const INSERT: &str = "INSERT INTO bench.kv (k, v) VALUES (?, ?)";
const SELECT: &str = "SELECT v FROM bench.kv WHERE k = ?";
const CREATE_KEYSPACE: &str = "CREATE KEYSPACE IF NOT EXISTS bench WITH replication = \
     {'class': 'SimpleStrategy', 'replication_factor': 1}";
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench.kv (k bigint PRIMARY KEY, v blob)";
/// Highest latency the histogram tracks (longer ones are clamped to it).
const LATENCY_MAX_NS: u64 = 60_000_000_000;
/// How often the `--while-pid` watcher looks at the process.
const WATCH_INTERVAL: Duration = Duration::from_millis(10);

/// Which statement the requests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Insert,
    Select,
    /// Write every key in `0..rows` once, print the write rate, stop.
    Load,
}

/// Command line of the load generator.
#[derive(Debug, Clone, Parser)]
#[command(about = "CQL load generator: prepared single-row INSERT or SELECT")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 9042)]
    port: u16,
    #[arg(long, value_enum)]
    workload: Workload,
    /// Request loops running at once (closed loop), or the most requests in
    /// flight (with `--rate`).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Issue this many requests per second on a fixed schedule (open loop),
    /// latency measured from each request's scheduled time.
    #[arg(long)]
    rate: Option<f64>,
    /// Length of the measured window, seconds.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// End the measured window early when this process exits.
    #[arg(long)]
    while_pid: Option<u32>,
    /// Unmeasured run before the window, seconds.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Keys are drawn from 0..rows; `select` and `load` write them all first.
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Size of the `v` blob written.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Write pseudo-random (incompressible) values, one per key, instead of
    /// one fixed value.
    #[arg(long)]
    random_values: bool,
    /// Options of the table, as they follow `WITH` in CREATE TABLE.
    #[arg(long)]
    table_options: Option<String>,
    /// Stop the measured window after this many requests even if time is left.
    #[arg(long, default_value_t = 100_000_000)]
    max_ops: u64,
    /// The server process whose CPU time is measured.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The node's Prometheus endpoint, `host:port`: print what its counters
    /// did in the measured window.
    #[arg(long)]
    metrics: Option<String>,
    /// Create no schema and write no rows (for the responder, which has none).
    #[arg(long)]
    no_schema: bool,
    /// `select` reads the rows already there instead of writing them first.
    #[arg(long)]
    no_populate: bool,
    /// Open loop: also print, per second of the schedule, the requests due
    /// in it and their p99 and max latency (to see when a stall happened).
    #[arg(long)]
    timeline: bool,
    /// Tokio worker threads of this client.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What every request shares.
struct Load {
    session: Session,
    insert: PreparedStatement,
    select: PreparedStatement,
    value: Vec<u8>,
    random_values: bool,
    rows: u64,
    /// Requests issued in the current phase, for `--max-ops`.
    issued: AtomicU64,
}

/// When a phase ends: at its deadline, or earlier when `stop` is set.
#[derive(Clone)]
struct Window {
    deadline: Instant,
    stop: Arc<AtomicBool>,
}

impl Window {
    fn open(&self, now: Instant) -> bool {
        now < self.deadline && !self.stop.load(Ordering::Relaxed)
    }
}

/// What the requests of one phase measured.
struct Phase {
    latency_ns: Histogram<u64>,
    /// Open loop: how long after its scheduled time each request was sent.
    send_lag_ns: Histogram<u64>,
    /// Open loop with `--timeline`: latency of the requests due in each second.
    per_second_ns: Vec<Histogram<u64>>,
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

/// One open-loop request: its latency from its scheduled time, and how late it was sent.
struct Outcome {
    /// When the request was due, from the start of the phase.
    due_offset: Duration,
    latency: Duration,
    send_lag: Duration,
    result: anyhow::Result<()>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args
        .rate
        .is_some_and(|rate| !(rate > 0.0 && rate.is_finite()))
    {
        bail!("--rate must be a positive number of requests per second");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let load = Arc::new(connect(&args).await?);
    if args.workload == Workload::Load {
        return load_rows(&load, &args).await;
    }
    if !args.no_schema && !args.no_populate && args.workload == Workload::Select {
        populate(&load, args.concurrency).await?;
    }
    let warmup = run_phase(&load, &args, Duration::from_secs(args.warmup), None).await;
    check_errors(&warmup, "warm-up")?;
    let metrics_before = match &args.metrics {
        Some(addr) => Some(scrape(addr).await?),
        None => None,
    };
    let server_before = args.server_pid.map(process_cpu_seconds).transpose()?;
    let client_before = process_cpu_seconds(std::process::id())?;
    let phase = run_phase(
        &load,
        &args,
        Duration::from_secs(args.duration),
        args.while_pid,
    )
    .await;
    let server_after = args.server_pid.map(process_cpu_seconds).transpose()?;
    let client_cpu_s = process_cpu_seconds(std::process::id())? - client_before;
    let server_cpu_s = server_before.zip(server_after).map(|(b, a)| a - b);
    report(&args, &phase, server_cpu_s, client_cpu_s);
    if let (Some(addr), Some(before)) = (&args.metrics, metrics_before) {
        report_metrics(&before, &scrape(addr).await?);
    }
    check_errors(&phase, "measured window")
}

/// Connects, creates the schema unless told not to, and prepares both statements.
async fn connect(args: &Args) -> anyhow::Result<Load> {
    let session = SessionBuilder::new()
        .known_node(format!("{}:{}", args.host, args.port))
        .fetch_schema_metadata(false)
        .build()
        .await
        .context("connect")?;
    if !args.no_schema {
        session
            .query_unpaged(CREATE_KEYSPACE, &[])
            .await
            .context("create keyspace bench")?;
        let create_table = match &args.table_options {
            Some(options) => format!("{CREATE_TABLE} WITH {options}"),
            None => CREATE_TABLE.to_owned(),
        };
        session
            .query_unpaged(create_table, &[])
            .await
            .context("create table bench.kv")?;
    }
    let insert = session.prepare(INSERT).await.context("prepare INSERT")?;
    let select = session.prepare(SELECT).await.context("prepare SELECT")?;
    Ok(Load {
        session,
        insert,
        select,
        value: vec![0xa5; args.value_bytes],
        random_values: args.random_values,
        rows: args.rows.max(1),
        issued: AtomicU64::new(0),
    })
}

/// The `load` workload: writes every key once and prints the rate.
async fn load_rows(load: &Arc<Load>, args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    populate(load, args.concurrency).await?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = load.rows as f64 * (8 + load.value.len()) as f64;
    println!(
        "workload=Load rows={} value_bytes={} random_values={} elapsed_s={seconds:.2}",
        load.rows,
        load.value.len(),
        load.random_values
    );
    println!(
        "rows_per_s={:.0} user_mb_per_s={:.1}",
        load.rows as f64 / seconds,
        bytes / seconds / 1e6
    );
    Ok(())
}

/// Writes every key in `0..rows`, `concurrency` keys at a time.
async fn populate(load: &Arc<Load>, concurrency: usize) -> anyhow::Result<()> {
    let loops = concurrency.clamp(1, 1024) as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for first in 0..loops {
        let load = load.clone();
        tasks.spawn(async move {
            let mut key = first;
            while key < load.rows {
                insert(&load, key).await?;
                key += loops;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("join a populating task")??;
    }
    Ok(())
}

/// Runs one phase of `duration` (ended early if `while_pid` exits), closed
/// or open loop as the arguments say.
async fn run_phase(
    load: &Arc<Load>,
    args: &Args,
    duration: Duration,
    while_pid: Option<u32>,
) -> Phase {
    load.issued.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let window = Window {
        deadline: started + duration,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let watcher = while_pid.map(|pid| {
        let stop = window.stop.clone();
        tokio::spawn(async move {
            while process_running(pid) {
                tokio::time::sleep(WATCH_INTERVAL).await;
            }
            stop.store(true, Ordering::Relaxed);
        })
    });
    let phase = match args.rate {
        Some(rate) => run_open_phase(load, args, rate, started, window).await,
        None => run_closed_phase(load, args, started, window).await,
    };
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    phase
}

/// Closed loop: `--concurrency` request loops, each waiting for its answer.
async fn run_closed_phase(
    load: &Arc<Load>,
    args: &Args,
    started: Instant,
    window: Window,
) -> Phase {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.concurrency.max(1) {
        let load = load.clone();
        let window = window.clone();
        let (workload, max_ops) = (args.workload, args.max_ops);
        tasks.spawn(async move { request_loop(&load, workload, index, &window, max_ops).await });
    }
    let mut phase = new_phase();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(part) => merge(&mut phase, part),
            Err(error) => {
                phase.errors += 1;
                phase.first_error.get_or_insert(error.to_string());
            }
        }
    }
    phase.elapsed = started.elapsed();
    phase
}

/// Open loop: a pacing thread hands request `i` to the runtime at
/// `started + i / rate`; this task collects the outcomes in order.
///
/// The pacer is an OS thread sleeping to each scheduled time (high-resolution
/// timers) rather than a tokio timer, whose millisecond ticks would add up to
/// a millisecond to every latency measured from the schedule.
async fn run_open_phase(
    load: &Arc<Load>,
    args: &Args,
    rate: f64,
    started: Instant,
    window: Window,
) -> Phase {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let pacer = {
        let load = load.clone();
        let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
        let runtime = tokio::runtime::Handle::current();
        let (workload, max_ops) = (args.workload, args.max_ops);
        std::thread::spawn(move || {
            let mut rng = XorShift::new(0x5eed);
            let mut scheduled: u64 = 0;
            loop {
                let due = started + Duration::from_secs_f64(scheduled as f64 / rate);
                if !window.open(due) || scheduled >= max_ops {
                    return due.saturating_duration_since(started);
                }
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if !window.open(due) {
                    return due.saturating_duration_since(started);
                }
                let key = rng.next() % load.rows;
                let (load, slots) = (load.clone(), slots.clone());
                let request = runtime.spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    let sent = Instant::now();
                    let result = execute(&load, workload, key).await;
                    Outcome {
                        due_offset: due.saturating_duration_since(started),
                        latency: due.elapsed(),
                        send_lag: sent.saturating_duration_since(due),
                        result,
                    }
                });
                if sender.send(request).is_err() {
                    return due.saturating_duration_since(started);
                }
                scheduled += 1;
            }
        })
    };
    let timeline = args.timeline;
    let mut phase = new_phase();
    while let Some(request) = receiver.recv().await {
        match request.await {
            Ok(outcome) => {
                let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
                phase.send_lag_ns.saturating_record(nanos(outcome.send_lag));
                match outcome.result {
                    Ok(()) => {
                        phase.latency_ns.saturating_record(nanos(outcome.latency));
                        phase.ops += 1;
                        if timeline {
                            let second = outcome.due_offset.as_secs() as usize;
                            while phase.per_second_ns.len() <= second {
                                phase.per_second_ns.push(new_histogram());
                            }
                            phase.per_second_ns[second].saturating_record(nanos(outcome.latency));
                        }
                    }
                    Err(error) => {
                        phase.errors += 1;
                        phase.first_error.get_or_insert(format!("{error:#}"));
                    }
                }
            }
            Err(error) => {
                phase.errors += 1;
                phase.first_error.get_or_insert(error.to_string());
            }
        }
    }
    // The pacer has returned: it dropped the sender when it did.
    phase.elapsed = match pacer.join() {
        Ok(scheduled_span) => scheduled_span,
        Err(_) => {
            phase.errors += 1;
            phase
                .first_error
                .get_or_insert("the pacing thread panicked".into());
            started.elapsed()
        }
    };
    phase
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
        .expect("the latency bounds are valid constants")
}

fn new_phase() -> Phase {
    Phase {
        latency_ns: new_histogram(),
        send_lag_ns: new_histogram(),
        per_second_ns: Vec::new(),
        ops: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    }
}

fn merge(into: &mut Phase, part: Phase) {
    into.latency_ns
        .add(&part.latency_ns)
        .expect("histograms with the same bounds merge");
    into.send_lag_ns
        .add(&part.send_lag_ns)
        .expect("histograms with the same bounds merge");
    into.ops += part.ops;
    into.errors += part.errors;
    if into.first_error.is_none() {
        into.first_error = part.first_error;
    }
}

/// One client: sends a request, waits for its answer, records the latency, repeats.
async fn request_loop(
    load: &Load,
    workload: Workload,
    index: usize,
    window: &Window,
    max_ops: u64,
) -> Phase {
    let mut phase = new_phase();
    let mut rng = XorShift::new(index as u64);
    while window.open(Instant::now()) && load.issued.fetch_add(1, Ordering::Relaxed) < max_ops {
        let key = rng.next() % load.rows;
        let started = Instant::now();
        let result = execute(load, workload, key).await;
        let latency_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        match result {
            Ok(()) => {
                phase.latency_ns.saturating_record(latency_ns.max(1));
                phase.ops += 1;
            }
            Err(error) => {
                phase.errors += 1;
                phase.first_error.get_or_insert(format!("{error:#}"));
            }
        }
    }
    phase
}

async fn execute(load: &Load, workload: Workload, key: u64) -> anyhow::Result<()> {
    match workload {
        Workload::Insert | Workload::Load => insert(load, key).await,
        Workload::Select => select(load, key).await,
    }
}

async fn insert(load: &Load, key: u64) -> anyhow::Result<()> {
    let random;
    let value = if load.random_values {
        random = random_value(key, load.value.len());
        random.as_slice()
    } else {
        load.value.as_slice()
    };
    let key = i64::try_from(key).context("key fits a bigint")?;
    load.session
        .execute_unpaged(&load.insert, (key, value))
        .await
        .context("execute INSERT")?;
    Ok(())
}

/// `len` pseudo-random bytes, the same for every write of `key`.
fn random_value(key: u64, len: usize) -> Vec<u8> {
    let mut rng = XorShift::new(key);
    let mut value = Vec::with_capacity(len + 8);
    while value.len() < len {
        value.extend_from_slice(&rng.next().to_le_bytes());
    }
    value.truncate(len);
    value
}

async fn select(load: &Load, key: u64) -> anyhow::Result<()> {
    let key = i64::try_from(key).context("key fits a bigint")?;
    let result = load
        .session
        .execute_unpaged(&load.select, (key,))
        .await
        .context("execute SELECT")?;
    let rows = result.into_rows_result().context("SELECT returns rows")?;
    if rows.rows_num() != 1 {
        bail!("SELECT of key {key} returned {} rows", rows.rows_num());
    }
    Ok(())
}

fn check_errors(phase: &Phase, what: &str) -> anyhow::Result<()> {
    match &phase.first_error {
        Some(first) => bail!(
            "{} requests failed in the {what}; first: {first}",
            phase.errors
        ),
        None => Ok(()),
    }
}

/// Whether process `pid` is still running (a zombie counts as exited).
fn process_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state (field 3) follows the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// CPU seconds (user + system, all threads) a process has used so far,
/// from fields 14 and 15 of `/proc/PID/stat`, in clock ticks of
/// `AT_CLKTCK` (the value `sysconf(_SC_CLK_TCK)` returns).
fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("parse {path}"))?;
    // Fields after the name start at field 3; utime is 14, stime 15.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |field: usize| -> anyhow::Result<u64> {
        let text = fields
            .get(field - 3)
            .with_context(|| format!("{path} has no field {field}"))?;
        text.parse()
            .with_context(|| format!("field {field} of {path}"))
    };
    let total = ticks(14)? + ticks(15)?;
    Ok(total as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// The node's metrics, each series summed over shards: `name{other labels}` → value.
/// Histogram buckets are left out (their `_sum` and `_count` are kept).
type Scrape = BTreeMap<String, f64>;

/// Fetches `http://{addr}/metrics` and sums its series over the `shard` label.
async fn scrape(addr: &str) -> anyhow::Result<Scrape> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to the metrics endpoint {addr}"))?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .context("send the metrics request")?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .await
        .context("read the metrics")?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("malformed metrics answer from {addr}");
    };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!(
            "metrics endpoint {addr} answered {}",
            head.lines().next().unwrap_or("")
        );
    }
    let mut series = Scrape::new();
    for line in body.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match name_labels.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (name_labels, ""),
        };
        if name.ends_with("_bucket") {
            continue;
        }
        let kept: Vec<&str> = labels
            .split(',')
            .filter(|label| !label.is_empty() && !label.starts_with("shard="))
            .collect();
        let key = if kept.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{}}}", kept.join(","))
        };
        *series.entry(key).or_default() += value;
    }
    Ok(series)
}

/// Prints what the node's counters did between two scrapes.
fn report_metrics(before: &Scrape, after: &Scrape) {
    let get = |scrape: &Scrape, key: &str| scrape.get(key).copied().unwrap_or(0.0);
    let delta = |key: &str| get(after, key) - get(before, key);
    let hits = delta("tessera_chunk_cache_total{what=\"hits\"}");
    let misses = delta("tessera_chunk_cache_total{what=\"misses\"}");
    println!(
        "node chunk_cache hits={hits:.0} misses={misses:.0} hit_ratio={:.3} evictions={:.0} \
         held_mib={:.1}",
        if hits + misses > 0.0 {
            hits / (hits + misses)
        } else {
            0.0
        },
        delta("tessera_chunk_cache_total{what=\"evictions\"}"),
        get(after, "tessera_chunk_cache_bytes") / (1 << 20) as f64
    );
    let storage = |what: &str| delta(&format!("tessera_storage_total{{what=\"{what}\"}}"));
    println!(
        "node storage sstable_reads={:.0} flushes={:.0} compactions={:.0} \
         compacted_mib_in={:.1} compacted_mib_out={:.1} live_sstables={:.0}",
        storage("sstable_reads"),
        storage("flushes"),
        storage("compactions"),
        storage("compacted_bytes_in") / (1 << 20) as f64,
        storage("compacted_bytes_out") / (1 << 20) as f64,
        get(after, "tessera_sstables")
    );
    let prefix = "tessera_io_queue_ops_total{class=\"";
    let classes: Vec<&str> = after
        .keys()
        .filter_map(|key| key.strip_prefix(prefix)?.strip_suffix("\"}"))
        .collect();
    for class in classes {
        let series = |name: &str| delta(&format!("tessera_io_queue_{name}{{class=\"{class}\"}}"));
        let ops = series("ops_total");
        if ops == 0.0 {
            continue;
        }
        let mean_us = |name: &str| {
            let count = series(&format!("{name}_count"));
            if count > 0.0 {
                series(&format!("{name}_sum")) * 1e6 / count
            } else {
                0.0
            }
        };
        println!(
            "node io class={class} ops={ops:.0} mib={:.1} mean_queued_us={:.0} \
             mean_disk_us={:.0}",
            series("bytes_total") / (1 << 20) as f64,
            mean_us("queued_seconds"),
            mean_us("disk_seconds")
        );
    }
}

fn report(args: &Args, phase: &Phase, server_cpu_s: Option<f64>, client_cpu_s: f64) {
    let seconds = phase.elapsed.as_secs_f64();
    let ops = phase.ops as f64;
    let us = |histogram: &Histogram<u64>, quantile: f64| {
        histogram.value_at_quantile(quantile) as f64 / 1000.0
    };
    let mode = match args.rate {
        Some(rate) => format!("open-loop rate={rate} max_in_flight={}", args.concurrency),
        None => format!("closed-loop concurrency={}", args.concurrency),
    };
    println!(
        "workload={:?} {mode} host={}:{} elapsed_s={seconds:.2} ops={} errors={}",
        args.workload, args.host, args.port, phase.ops, phase.errors
    );
    println!("ops_per_s={:.0}", ops / seconds);
    let quantiles = |label: &str, histogram: &Histogram<u64>| {
        println!(
            "{label}_us p50={:.0} p99={:.0} p99.9={:.0} max={:.0}",
            us(histogram, 0.5),
            us(histogram, 0.99),
            us(histogram, 0.999),
            histogram.max() as f64 / 1000.0
        );
    };
    quantiles("latency", &phase.latency_ns);
    if args.rate.is_some() {
        quantiles("send_lag", &phase.send_lag_ns);
    }
    for (second, histogram) in phase.per_second_ns.iter().enumerate() {
        println!(
            "timeline s={second} ops={} p50_us={:.0} p99_us={:.0} max_us={:.0}",
            histogram.len(),
            us(histogram, 0.5),
            us(histogram, 0.99),
            histogram.max() as f64 / 1000.0
        );
    }
    match server_cpu_s {
        Some(cpu) => println!(
            "server_cpu_s={cpu:.2} server_cpu_util={:.2} server_cpu_us_per_op={:.2} \
             ops_per_server_cpu_s={:.0}",
            cpu / seconds,
            cpu * 1e6 / ops,
            ops / cpu
        ),
        None => println!("server_cpu_s=unknown (no --server-pid)"),
    }
    // Listeners use SO_REUSEPORT, so a second server left on the port
    // silently takes connections; the measured process then looks idle.
    if server_cpu_s.is_some_and(|cpu| cpu < 0.01 * seconds) && phase.ops > 0 {
        println!(
            "warning: the server process was nearly idle; is another process serving this port?"
        );
    }
    println!(
        "client_cpu_s={client_cpu_s:.2} client_cpu_util={:.2}",
        client_cpu_s / seconds
    );
}

/// A small xorshift64* generator: keys need only be spread, not unpredictable.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
