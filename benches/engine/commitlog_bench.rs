//! Commitlog write bandwidth and cost: `appenders` tasks on one shard each
//! append entries of `min_entry_bytes..=max_entry_bytes` (uniform). In batch
//! mode each waits for its entry to be durable before the next, as
//! concurrent batch-mode writes do. In periodic mode `append` returns at
//! once; a ticker wakes every appender once per `tick_us` and each appends
//! one entry, so the shard polls its reactor between rounds of `appenders`
//! appends, as under a CQL load that does not saturate it (a few requests
//! per reactor round); the process CPU per append is the figure. Segments are discarded as they fill (as flushes
//! would), so the log recycles them instead of growing.
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use storage::commitlog::{Commitlog, Config, SyncMode};

use crate::workload::{fresh_dir, mb_per_sec, mix, on_shard};

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Directory of the segments (emptied first); on the disk under test.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 64)]
    appenders: u64,
    #[arg(long, default_value_t = 1024)]
    min_entry_bytes: usize,
    #[arg(long, default_value_t = 4096)]
    max_entry_bytes: usize,
    /// Payload to append in all, MiB.
    #[arg(long, default_value_t = 2048)]
    total_mib: u64,
    /// The commitlog's sync mode.
    #[arg(long, value_enum, default_value_t = Sync::Batch)]
    sync: Sync,
    /// Periodic mode: microseconds between rounds of appends.
    #[arg(long, default_value_t = 100)]
    tick_us: u64,
    /// Periodic mode's sync period, ms.
    #[arg(long, default_value_t = 10_000)]
    sync_period_ms: u64,
    #[command(flatten)]
    io: crate::workload::IoArgs,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    Batch,
    Periodic,
}

struct Totals {
    bytes: u64,
    appends: u64,
}

pub fn run(options: Options) -> anyhow::Result<()> {
    crate::workload::configure_io(&options.io, &options.dir)?;
    fresh_dir(&options.dir)?;
    let cpu_before = crate::workload::process_cpu_secs();
    let opts = options.clone();
    let (totals, elapsed, stats) = on_shard(move || async move {
        let sync = match opts.sync {
            Sync::Batch => SyncMode::Batch,
            Sync::Periodic => SyncMode::Periodic(Duration::from_millis(opts.sync_period_ms)),
        };
        let config = Config {
            sync,
            total_space_bytes: 1 << 30,
            ..Config::default()
        };
        let (log, _) = Commitlog::open(&opts.dir, 0, config).await?;
        let log = Rc::new(log);
        let started = Instant::now();
        let totals = append_all(&log, &opts).await?;
        let elapsed = started.elapsed();
        let stats = log.stats();
        Rc::try_unwrap(log)
            .map_err(|_| anyhow::anyhow!("commitlog still shared"))?
            .close()
            .await?;
        anyhow::Ok((totals, elapsed, stats))
    })?;
    let mode = format!("{:?}", options.sync).to_lowercase();
    println!(
        "commitlog {mode}: appenders {} entries {}..={} B: {} appends, {:.1} MiB in {:.2} s = {:.1} MB/s ({:.0} appends/s); {} writes, {} syncs, {:.1} appends per sync, {} segments created, {} recycled",
        options.appenders,
        options.min_entry_bytes,
        options.max_entry_bytes,
        totals.appends,
        totals.bytes as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64(),
        mb_per_sec(totals.bytes, elapsed),
        totals.appends as f64 / elapsed.as_secs_f64(),
        stats.batches_written,
        stats.syncs,
        totals.appends as f64 / stats.syncs.max(1) as f64,
        stats.segments_created,
        stats.segments_recycled,
    );
    let cpu_secs = crate::workload::process_cpu_secs() - cpu_before;
    println!(
        "commitlog {mode}: process CPU {:.2} s ({:.0} % of one core, {:.2} µs per append, {:.1} appends per write); IO scheduler {}",
        cpu_secs,
        100.0 * cpu_secs / elapsed.as_secs_f64(),
        cpu_secs * 1e6 / totals.appends.max(1) as f64,
        totals.appends as f64 / stats.batches_written.max(1) as f64,
        if options.io.io_scheduler {
            "on"
        } else {
            "bypassed"
        },
    );
    Ok(())
}

/// Runs the appenders until `total_mib` are appended.
async fn append_all(log: &Rc<Commitlog>, options: &Options) -> anyhow::Result<Totals> {
    let budget = options.total_mib << 20;
    let per_appender = budget / options.appenders;
    let span = (options.max_entry_bytes - options.min_entry_bytes + 1) as u64;
    let mut ticks = Vec::new();
    let tasks: Vec<_> = (0..options.appenders)
        .map(|appender| {
            let log = log.clone();
            let (tick, ticked) = scheduler::channels::new_bounded::<()>(1);
            ticks.push(tick);
            let min = options.min_entry_bytes;
            let periodic = options.sync == Sync::Periodic;
            let appending = async move {
                let payload = vec![0x5Au8; min + span as usize];
                let mut totals = Totals {
                    bytes: 0,
                    appends: 0,
                };
                let mut n = appender << 32;
                while totals.bytes < per_appender {
                    if periodic && ticked.recv().await.is_none() {
                        break;
                    }
                    let len = min + (mix(n) % span) as usize;
                    log.append(&payload[..len]).await?;
                    totals.bytes += len as u64;
                    totals.appends += 1;
                    n += 1;
                    if totals.appends.is_multiple_of(64) {
                        // What flushes do: release the segments behind.
                        log.discard_before(log.current_segment_start());
                    }
                }
                anyhow::Ok(totals)
            };
            scheduler::spawn_in(scheduler::Group::Statement, appending)
        })
        .collect();
    if options.sync == Sync::Periodic {
        let tick = Duration::from_micros(options.tick_us);
        scheduler::spawn_local(async move {
            // Until every appender is done (its receiver gone).
            while !ticks.is_empty() {
                scheduler::sleep(tick).await;
                ticks.retain(|t| !matches!(t.try_send(()), Err(glommio::GlommioError::Closed(_))));
            }
        });
    }
    let mut sum = Totals {
        bytes: 0,
        appends: 0,
    };
    for task in tasks {
        let totals = task.await?;
        sum.bytes += totals.bytes;
        sum.appends += totals.appends;
    }
    // Let the writer recycle what was discarded before the stats are read.
    scheduler::sleep(Duration::from_millis(1)).await;
    Ok(sum)
}
