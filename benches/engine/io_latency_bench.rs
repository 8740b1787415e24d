//! Read latency behind a major compaction on the same shard, with the IO
//! scheduler on or bypassed (`IoConfig::scheduling`).
//!
//! 1. Load `load_mib` of user data into each of two tables, `a` and `b`,
//!    with background compaction disabled, so each ends as many SSTables
//!    on disk (the memtables are flushed; reads go to SSTables, with direct
//!    IO, so the page cache does not serve them).
//! 2. Idle: single-partition reads of random loaded keys from `a` at
//!    `read_rate` per second for `idle_secs`.
//! 3. Solo: a major compaction of `b`, nothing else running: its speed.
//! 4. During: a major compaction of `a` (in the compaction group) while
//!    reads of `a` go on at the same rate until it ends.
//!
//! Latency is measured from the moment a read was due (a fixed schedule),
//! not from when it started, so a stalled shard cannot hide its stall.
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cluster::local;
use hdrhistogram::Histogram;
use storage::model::{SliceQuery, TableId};

use crate::workload::{
    compaction_options, configure_io, decorated_key, fresh_dir, mb_per_sec, mix, on_shard,
    process_cpu_secs, schema, table_def, user_bytes, EngineSetup, IoArgs,
};

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Directory of the run (emptied first); on the disk under test.
    #[arg(long)]
    dir: PathBuf,
    /// User data loaded into each of the two tables, MiB.
    #[arg(long, default_value_t = 512)]
    load_mib: u64,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Memtable bytes before a flush while loading, MiB (sets the SSTable count).
    #[arg(long, default_value_t = 16)]
    memtable_mib: usize,
    /// Reads per second, on a fixed schedule.
    #[arg(long, default_value_t = 2000)]
    read_rate: u64,
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
    #[command(flatten)]
    io: IoArgs,
}

pub fn run(options: Options) -> anyhow::Result<()> {
    configure_io(&options.io, &options.dir)?;
    fresh_dir(&options.dir)?;
    let opts = options.clone();
    let report = on_shard(move || async move { phases(&opts).await })?;
    println!(
        "io-latency: scheduler {} load {} MiB per table, reads {}/s",
        if options.io.io_scheduler {
            "on"
        } else {
            "bypassed"
        },
        options.load_mib,
        options.read_rate
    );
    println!("{report}");
    Ok(())
}

async fn phases(options: &Options) -> anyhow::Result<String> {
    let disabled = compaction_options("SizeTieredCompactionStrategy", &[("enabled", "false")]);
    let a = table_def("a", disabled.clone());
    let b = table_def("b", disabled);
    let (a, b) = ((a.id, a), (b.id, b));
    let setup = EngineSetup {
        dir: options.dir.clone(),
        memtable_limit_bytes: options.memtable_mib << 20,
        sync: None,
    };
    crate::workload::start_engine(&setup, schema(vec![a.1, b.1])).await?;
    let (a, b) = (a.0, b.0);
    let keys = (options.load_mib << 20) / user_bytes(options.value_bytes);
    let now_us = scheduler::clock::now_micros();
    for table in [a, b] {
        crate::workload::insert(
            table,
            0,
            keys,
            options.value_bytes,
            4,
            Rc::new(move |_| now_us),
        )
        .await?;
    }
    local::flush_all().await?;
    let mut out = format!(
        "loaded {keys} keys per table; SSTables: a {}, b {}\n",
        local::table(a)?.sstable_count(),
        local::table(b)?.sstable_count()
    );
    let cpu = process_cpu_secs();
    let idle = read_at_rate(a, keys, options.read_rate, Phase::For(options.idle_secs)).await?;
    out += &format!("idle reads:   {}\n", idle.summary());
    out += &cpu_line(cpu, options.idle_secs as f64);
    let cpu = process_cpu_secs();
    let (solo_mb_s, solo_secs) = timed_major_compaction(b).await?;
    out += &format!("solo compaction: {solo_mb_s:.1} MB/s read ({solo_secs:.1} s)\n");
    out += &cpu_line(cpu, solo_secs);
    let cpu = process_cpu_secs();
    let done = Rc::new(Cell::new(false));
    let compaction = {
        let done = done.clone();
        scheduler::spawn_in(scheduler::Group::Compaction, async move {
            let result = timed_major_compaction(a).await;
            done.set(true);
            result
        })
    };
    let during = read_at_rate(a, keys, options.read_rate, Phase::Until(done)).await?;
    let (during_mb_s, during_secs) = compaction.await?;
    out += &format!("during reads: {}\n", during.summary());
    out += &cpu_line(cpu, during_secs);
    out += &format!(
        "compaction during reads: {during_mb_s:.1} MB/s read ({during_secs:.1} s) = {:.0} % of solo\n",
        100.0 * during_mb_s / solo_mb_s
    );
    out += &format!(
        "p99 during / idle = {:.2}",
        during.histogram.value_at_quantile(0.99) as f64
            / idle.histogram.value_at_quantile(0.99).max(1) as f64
    );
    Ok(out)
}

/// The process's CPU use since `before` over `secs` of wall time.
fn cpu_line(before: f64, secs: f64) -> String {
    let used = process_cpu_secs() - before;
    format!(
        "  process CPU {used:.1} s = {:.0} % of one core\n",
        100.0 * used / secs
    )
}

/// Major-compacts `table`; returns the input MB/s and seconds.
async fn timed_major_compaction(table: TableId) -> anyhow::Result<(f64, f64)> {
    let before = local::table(table)?.stats().compacted_bytes_in;
    let started = Instant::now();
    local::major_compaction(table).await?;
    let elapsed = started.elapsed();
    let read = local::table(table)?.stats().compacted_bytes_in - before;
    Ok((mb_per_sec(read, elapsed), elapsed.as_secs_f64()))
}

enum Phase {
    For(u64),
    Until(Rc<Cell<bool>>),
}

struct Latencies {
    histogram: Histogram<u64>,
    misses: u64,
    errors: u64,
}

impl Latencies {
    fn summary(&self) -> String {
        let h = &self.histogram;
        format!(
            "{} reads, p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs ({} missing, {} errors)",
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            self.misses,
            self.errors
        )
    }
}

/// Issues reads of random keys of `table` at `rate` per second on a fixed
/// schedule, each in its own task, until the phase ends; waits for them all.
async fn read_at_rate(
    table: TableId,
    keys: u64,
    rate: u64,
    phase: Phase,
) -> anyhow::Result<Latencies> {
    let latencies = Rc::new(RefCell::new(Latencies {
        histogram: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        misses: 0,
        errors: 0,
    }));
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0u64.. {
        let over = match &phase {
            Phase::For(secs) => start.elapsed() >= Duration::from_secs(*secs),
            Phase::Until(done) => done.get(),
        };
        if over {
            break;
        }
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            scheduler::sleep(wait).await;
        }
        let latencies = latencies.clone();
        let key = decorated_key(mix(i) % keys);
        let now_secs = scheduler::clock::now_secs();
        tasks.push(scheduler::spawn_in(
            scheduler::Group::Statement,
            async move {
                let result =
                    local::read_partition(table, &key, &SliceQuery::full(), now_secs).await;
                let mut l = latencies.borrow_mut();
                match result {
                    Ok(Some(_)) => {}
                    Ok(None) => l.misses += 1,
                    Err(_) => l.errors += 1,
                }
                let micros = due.elapsed().as_micros() as u64;
                let _ = l.histogram.record(micros.max(1));
            },
        ));
    }
    for task in tasks {
        task.await;
    }
    Rc::try_unwrap(latencies)
        .map_err(|_| anyhow::anyhow!("reads still running"))
        .map(RefCell::into_inner)
}
