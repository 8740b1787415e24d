//! Sustained inserts: `ops` writes of a 16-byte key and a `value_bytes`
//! value, each its own partition, into the engine of one shard (commitlog
//! append, memtable apply, background flushes and compactions), and the
//! same keys and values into fjall on the same disk.
//!
//! Durability is the same on both sides: a write is acknowledged once it
//! is handed to the log (Tessera: laid out in the commitlog's batch, written
//! with direct IO at once; fjall: written to its journal), and the log is
//! fdatasync'ed every `sync_period_ms` (Tessera: periodic mode; fjall: a
//! thread calling `persist(SyncData)`).
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::local;
use storage::commitlog::SyncMode;

use crate::workload::{
    compaction_options, fresh_dir, key, on_shards, process_cpu_secs, schema, settle, table_def,
    user_bytes, value, EngineSetup,
};

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Directory of the run (emptied first): `data/` and `commitlog/`.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 8_000_000)]
    ops: u64,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Concurrent writers on the shard.
    #[arg(long, default_value_t = 8)]
    concurrency: u64,
    /// Memtable bytes the shard holds before flushing, MiB.
    #[arg(long, default_value_t = 64)]
    memtable_mib: usize,
    /// fdatasync period of the commitlog (periodic mode).
    #[arg(long, default_value_t = 10_000)]
    sync_period_ms: u64,
    /// Also flush at the end and wait for compactions to finish, timed apart.
    #[arg(long)]
    settle: bool,
    /// Shards (one per core, as the node runs), each inserting its share of
    /// the keys with `concurrency` writers and `memtable_mib` of memtables.
    #[arg(long, default_value_t = 1)]
    shards: usize,
}

#[derive(clap::Args, Debug, Clone)]
pub struct FjallOptions {
    /// Directory of the database (emptied first).
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 8_000_000)]
    ops: u64,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Period of `persist(SyncData)` on the journal.
    #[arg(long, default_value_t = 10_000)]
    sync_period_ms: u64,
}

pub fn run(options: Options) -> anyhow::Result<()> {
    fresh_dir(&options.dir)?;
    let opts = options.clone();
    let shards = options.shards.max(1);
    let per_shard = options.ops.div_ceil(shards as u64);
    let reports = on_shards(shards, move |shard| {
        let opts = opts.clone();
        async move {
            let def = table_def(
                "kv",
                compaction_options("SizeTieredCompactionStrategy", &[]),
            );
            let table = def.id;
            let setup = EngineSetup {
                dir: opts.dir.clone(),
                memtable_limit_bytes: opts.memtable_mib << 20,
                sync: Some(SyncMode::Periodic(Duration::from_millis(
                    opts.sync_period_ms,
                ))),
            };
            crate::workload::start_engine_on(
                &setup,
                schema(vec![def]),
                shard as u32,
                shards as u32,
            )
            .await?;
            let cpu_before = process_cpu_secs();
            let started = Instant::now();
            let now_us = scheduler::clock::now_micros();
            let first = per_shard * shard as u64;
            let count = per_shard.min(opts.ops.saturating_sub(first));
            crate::workload::insert(
                table,
                first,
                count,
                opts.value_bytes,
                opts.concurrency,
                Rc::new(move |_| now_us),
            )
            .await?;
            let inserted = started.elapsed();
            let inserted_cpu = process_cpu_secs() - cpu_before;
            if opts.settle {
                settle(table).await?;
            }
            let settled = started.elapsed();
            let stats = local::table_stats();
            let flush = local::flush_stats();
            local::close_commitlog().await?;
            let detail = format!(
            "flushes {} compactions {} write stalls {} flushed {:.1} MiB compacted out {:.1} MiB; \
             with final flush and compactions: {:.2} s",
            stats.flushes,
            stats.compactions,
            flush.write_stalls,
            stats.flushed_bytes as f64 / (1 << 20) as f64,
            stats.compacted_bytes_out as f64 / (1 << 20) as f64,
            settled.as_secs_f64(),
        );
            anyhow::Ok((inserted.as_secs_f64(), inserted_cpu, detail))
        }
    })?;
    // The run lasts as long as its slowest shard; the CPU is the process's.
    let secs = reports.iter().map(|r| r.0).fold(0.0, f64::max);
    let cpu_secs = reports.iter().map(|r| r.1).fold(0.0, f64::max);
    print_rate("tessera", options.ops, options.value_bytes, secs, cpu_secs);
    for (shard, (_, _, detail)) in reports.iter().enumerate() {
        println!("tessera shard {shard}: {detail}");
    }
    Ok(())
}

/// Prints the insert rate, per wall second and per CPU second of the
/// whole process (every thread: fjall's flush and compaction workers too).
fn print_rate(engine: &str, ops: u64, value_bytes: usize, secs: f64, cpu_secs: f64) {
    println!(
        "{engine}: {ops} inserts ({:.1} MiB user data) in {secs:.2} s = {:.0} ops/s; \
         CPU {cpu_secs:.2} s = {:.0} ops per CPU-second",
        (ops * user_bytes(value_bytes)) as f64 / (1 << 20) as f64,
        ops as f64 / secs,
        ops as f64 / cpu_secs,
    );
}

pub fn run_fjall(options: FjallOptions) -> anyhow::Result<()> {
    fresh_dir(&options.dir)?;
    let db = fjall::Database::builder(&options.dir).open()?;
    let keyspace = db.keyspace("kv", fjall::KeyspaceCreateOptions::default)?;
    let stop = Arc::new(AtomicBool::new(false));
    let syncer = {
        let db = db.clone();
        let stop = stop.clone();
        let period = Duration::from_millis(options.sync_period_ms);
        std::thread::spawn(move || {
            let tick = Duration::from_millis(10);
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                if last.elapsed() >= period {
                    let _ = db.persist(fjall::PersistMode::SyncData);
                    last = Instant::now();
                }
            }
        })
    };
    let cpu_before = process_cpu_secs();
    let started = Instant::now();
    for n in 0..options.ops {
        keyspace.insert(key(n), value(n, options.value_bytes))?;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = process_cpu_secs() - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let _ = syncer.join();
    print_rate("fjall", options.ops, options.value_bytes, secs, cpu_secs);
    println!(
        "fjall: compactions completed {}, disk space {:.1} MiB",
        db.compactions_completed(),
        db.disk_space()? as f64 / (1 << 20) as f64
    );
    Ok(())
}
