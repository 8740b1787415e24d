//! Write amplification of one compaction strategy: load `total_mib` of
//! unique keys through the engine of one shard, flush, let compaction
//! finish, and divide the bytes flushes and compactions wrote (the table's
//! `flushed_bytes + compacted_bytes_out`, SSTable Data.db bytes) by the
//! user bytes (key + value) written.
//!
//! TimeWindow gets time-series data: timestamps advance with the write
//! number so that the load spans `windows` one-hour windows; the other
//! strategies get one timestamp.
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use cluster::local;

use crate::workload::{
    compaction_options, fresh_dir, on_shard, schema, settle, table_def, user_bytes, EngineSetup,
};

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum Strategy {
    SizeTiered,
    Leveled,
    TimeWindow,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Directory of the run (emptied first).
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, value_enum)]
    strategy: Strategy,
    /// User data to write (keys + values), MiB.
    #[arg(long, default_value_t = 1024)]
    total_mib: u64,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Memtable bytes the shard holds before flushing, MiB.
    #[arg(long, default_value_t = 32)]
    memtable_mib: usize,
    /// Leveled: `sstable_size_in_mb`.
    #[arg(long, default_value_t = 160)]
    leveled_sstable_mib: u64,
    /// TimeWindow: one-hour windows the load spans.
    #[arg(long, default_value_t = 8)]
    windows: u64,
}

fn compaction_map(options: &Options) -> storage::schema::OptionMap {
    match options.strategy {
        Strategy::SizeTiered => compaction_options("SizeTieredCompactionStrategy", &[]),
        Strategy::Leveled => compaction_options(
            "LeveledCompactionStrategy",
            &[(
                "sstable_size_in_mb",
                &options.leveled_sstable_mib.to_string(),
            )],
        ),
        Strategy::TimeWindow => compaction_options(
            "TimeWindowCompactionStrategy",
            &[
                ("compaction_window_unit", "HOURS"),
                ("compaction_window_size", "1"),
            ],
        ),
    }
}

pub fn run(options: Options) -> anyhow::Result<()> {
    fresh_dir(&options.dir)?;
    let ops = (options.total_mib << 20) / user_bytes(options.value_bytes);
    let opts = options.clone();
    let (stats, sstables, secs) = on_shard(move || async move {
        let def = table_def("kv", compaction_map(&opts));
        let table = def.id;
        let setup = EngineSetup {
            dir: opts.dir.clone(),
            memtable_limit_bytes: opts.memtable_mib << 20,
            sync: None,
        };
        crate::workload::start_engine(&setup, schema(vec![def])).await?;
        let base_us = scheduler::clock::now_micros() - (opts.windows as i64) * 3_600_000_000;
        let step_us = (opts.windows as i64 * 3_600_000_000) / ops.max(1) as i64;
        let timestamp: Rc<dyn Fn(u64) -> i64> = match opts.strategy {
            Strategy::TimeWindow => Rc::new(move |n| base_us + n as i64 * step_us),
            _ => Rc::new(move |_| base_us),
        };
        let started = Instant::now();
        crate::workload::insert(table, 0, ops, opts.value_bytes, 4, timestamp).await?;
        settle(table).await?;
        let secs = started.elapsed().as_secs_f64();
        let sstables = local::sstable_count();
        anyhow::Ok((local::table_stats(), sstables, secs))
    })?;
    let user = ops * user_bytes(options.value_bytes);
    let written = stats.flushed_bytes + stats.compacted_bytes_out;
    println!(
        "write-amp {:?}: {ops} writes, {:.1} MiB user data in {secs:.1} s; flushed {:.1} MiB, \
         compactions {} wrote {:.1} MiB (read {:.1} MiB); {sstables} SSTables left",
        options.strategy,
        user as f64 / (1 << 20) as f64,
        stats.flushed_bytes as f64 / (1 << 20) as f64,
        stats.compactions,
        stats.compacted_bytes_out as f64 / (1 << 20) as f64,
        stats.compacted_bytes_in as f64 / (1 << 20) as f64,
    );
    println!(
        "write-amp {:?}: (flushed + compacted out) / user = {:.2}; / flushed = {:.2}",
        options.strategy,
        written as f64 / user as f64,
        written as f64 / stats.flushed_bytes.max(1) as f64,
    );
    Ok(())
}
