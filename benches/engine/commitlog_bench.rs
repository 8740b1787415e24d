//! Commitlog write bandwidth in batch mode: `appenders` tasks on one shard
//! each append entries of `min_entry_bytes..=max_entry_bytes` (uniform) and
//! wait for each to be durable before the next, as concurrent batch-mode
//! writes do. Segments are discarded as they fill (as flushes would), so
//! the log recycles them instead of growing.
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
    #[command(flatten)]
    io: crate::workload::IoArgs,
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
        let config = Config {
            sync: SyncMode::Batch,
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
    println!(
        "commitlog batch: appenders {} entries {}..={} B: {} appends, {:.1} MiB in {:.2} s = {:.1} MB/s ({:.0} appends/s); {} syncs, {:.1} appends per sync, {} segments created, {} recycled",
        options.appenders,
        options.min_entry_bytes,
        options.max_entry_bytes,
        totals.appends,
        totals.bytes as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64(),
        mb_per_sec(totals.bytes, elapsed),
        totals.appends as f64 / elapsed.as_secs_f64(),
        stats.syncs,
        totals.appends as f64 / stats.syncs.max(1) as f64,
        stats.segments_created,
        stats.segments_recycled,
    );
    println!(
        "commitlog batch: process CPU {:.2} s ({:.0} % of one core); IO scheduler {}",
        crate::workload::process_cpu_secs() - cpu_before,
        100.0 * (crate::workload::process_cpu_secs() - cpu_before) / elapsed.as_secs_f64(),
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
    let tasks: Vec<_> = (0..options.appenders)
        .map(|appender| {
            let log = log.clone();
            let min = options.min_entry_bytes;
            scheduler::spawn_in(scheduler::Group::Statement, async move {
                let payload = vec![0x5Au8; min + span as usize];
                let mut totals = Totals {
                    bytes: 0,
                    appends: 0,
                };
                let mut n = appender << 32;
                while totals.bytes < per_appender {
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
            })
        })
        .collect();
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
