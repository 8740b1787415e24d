//! The CQL load generator: prepared single-row INSERT or SELECT at a chosen
//! concurrency, on the `scylla` driver, against a node or the do-nothing
//! responder (`responder.rs`).
//!
//! A run goes in five steps:
//! 1. Connect one session (schema metadata off, so the node and the responder
//!    see the same connect-time queries).
//! 2. Unless `--no-schema`: create `bench.kv (k bigint PRIMARY KEY, v blob)`,
//!    and for `select` write every key in `0..rows` first.
//! 3. Warm up for `--warmup` seconds (connections, memtable, allocator).
//! 4. Run `--concurrency` request loops for `--duration` seconds (or until
//!    `--max-ops` requests were issued), each waiting for its answer before
//!    sending the next, on keys drawn uniformly from `0..rows`; every latency
//!    goes into an HDR histogram.
//! 5. Print ops/s, p50/p99/p99.9 latency, and the server's CPU seconds in the
//!    measured window (utime + stime of `--server-pid` from `/proc`), so a run
//!    that is bound by this client still shows what each operation cost the
//!    server.
//!
//! Ops per server-CPU-second is the figure the benchmark compares: it does
//! not depend on whether the server was saturated, only on how much work an
//! operation made it do.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;

const INSERT: &str = "INSERT INTO bench.kv (k, v) VALUES (?, ?)";
const SELECT: &str = "SELECT v FROM bench.kv WHERE k = ?";
const CREATE_KEYSPACE: &str = "CREATE KEYSPACE IF NOT EXISTS bench WITH replication = \
     {'class': 'SimpleStrategy', 'replication_factor': 1}";
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench.kv (k bigint PRIMARY KEY, v blob)";
/// Highest latency the histogram tracks (longer ones are clamped to it).
const LATENCY_MAX_NS: u64 = 60_000_000_000;

/// Which statement the request loops run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Insert,
    Select,
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
    /// Request loops running at once (requests in flight).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Length of the measured window, seconds.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Unmeasured run before the window, seconds.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Keys are drawn from 0..rows; `select` writes them all first.
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Size of the `v` blob written.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Stop the measured window after this many requests even if time is left.
    #[arg(long, default_value_t = 100_000_000)]
    max_ops: u64,
    /// The server process whose CPU time is measured.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Create no schema and write no rows (for the responder, which has none).
    #[arg(long)]
    no_schema: bool,
    /// Tokio worker threads of this client.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What every request loop shares.
struct Load {
    session: Session,
    insert: PreparedStatement,
    select: PreparedStatement,
    value: Vec<u8>,
    rows: u64,
    /// Requests issued in the current phase, for `--max-ops`.
    issued: AtomicU64,
}

/// What the request loops of one phase measured.
struct Phase {
    latency_ns: Histogram<u64>,
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let load = Arc::new(connect(&args).await?);
    if !args.no_schema && args.workload == Workload::Select {
        populate(&load, args.concurrency).await?;
    }
    let warmup = run_phase(&load, &args, Duration::from_secs(args.warmup)).await;
    check_errors(&warmup, "warm-up")?;
    let server_before = args.server_pid.map(process_cpu_seconds).transpose()?;
    let client_before = process_cpu_seconds(std::process::id())?;
    let phase = run_phase(&load, &args, Duration::from_secs(args.duration)).await;
    let server_after = args.server_pid.map(process_cpu_seconds).transpose()?;
    let client_cpu_s = process_cpu_seconds(std::process::id())? - client_before;
    let server_cpu_s = server_before.zip(server_after).map(|(b, a)| a - b);
    report(&args, &phase, server_cpu_s, client_cpu_s);
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
        session
            .query_unpaged(CREATE_TABLE, &[])
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
        rows: args.rows.max(1),
        issued: AtomicU64::new(0),
    })
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

/// Runs `--concurrency` request loops for `duration` and merges what they measured.
async fn run_phase(load: &Arc<Load>, args: &Args, duration: Duration) -> Phase {
    load.issued.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.concurrency.max(1) {
        let load = load.clone();
        let (workload, max_ops) = (args.workload, args.max_ops);
        tasks.spawn(async move { request_loop(&load, workload, index, deadline, max_ops).await });
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

fn new_phase() -> Phase {
    Phase {
        latency_ns: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
            .expect("the latency bounds are valid constants"),
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
    deadline: Instant,
    max_ops: u64,
) -> Phase {
    let mut phase = new_phase();
    let mut rng = XorShift::new(index as u64);
    while Instant::now() < deadline && load.issued.fetch_add(1, Ordering::Relaxed) < max_ops {
        let key = rng.next() % load.rows;
        let started = Instant::now();
        let result = match workload {
            Workload::Insert => insert(load, key).await,
            Workload::Select => select(load, key).await,
        };
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

async fn insert(load: &Load, key: u64) -> anyhow::Result<()> {
    let key = i64::try_from(key).context("key fits a bigint")?;
    load.session
        .execute_unpaged(&load.insert, (key, load.value.as_slice()))
        .await
        .context("execute INSERT")?;
    Ok(())
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

fn report(args: &Args, phase: &Phase, server_cpu_s: Option<f64>, client_cpu_s: f64) {
    let seconds = phase.elapsed.as_secs_f64();
    let ops = phase.ops as f64;
    let us = |quantile: f64| phase.latency_ns.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "workload={:?} concurrency={} host={}:{} elapsed_s={seconds:.2} ops={} errors={}",
        args.workload, args.concurrency, args.host, args.port, phase.ops, phase.errors
    );
    println!("ops_per_s={:.0}", ops / seconds);
    println!(
        "latency_us p50={:.0} p99={:.0} p99.9={:.0} max={:.0}",
        us(0.5),
        us(0.99),
        us(0.999),
        phase.latency_ns.max() as f64 / 1000.0
    );
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
