//! The CPU cost of a major compaction alone: MB/s of input `Data.db` and
//! CPU seconds per input MB, nothing else running on the shard.
//!
//! 1. `--phase load`: `load_mib` of user data into one table with small
//!    memtables and background compaction disabled, so it ends as many
//!    SSTables on disk.
//! 2. `--phase compact`: opens that directory and times one major
//!    compaction of the table (wall time, process CPU time).
//!
//! The phases run apart so that one loaded directory can be copied and
//! compacted by two builds back to back (a ratio within one run), and so
//! that a profiler (`perf record`, `valgrind --tool=callgrind`) sees the
//! compaction rather than the load. `--phase both` runs the two in one
//! process. The table id is fixed, so a later process finds the table.
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use cluster::local;
use storage::model::TableId;

use crate::workload::{
    compaction_options, fresh_dir, mb_per_sec, on_shard, process_cpu_secs, schema, table_def,
    user_bytes, EngineSetup,
};

/// The benchmark table's id (fixed: the compact phase reopens the load's files).
const TABLE_ID: TableId = uuid::Uuid::from_u128(0x7e55_e4a0_c0a1_4c7b_9d3e_0000_0000_0001);

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Load,
    Compact,
    Both,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Directory of the run; `load` empties it first, `compact` reuses it.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Phase::Both)]
    phase: Phase,
    /// User data loaded (keys + values), MiB.
    #[arg(long, default_value_t = 128)]
    load_mib: u64,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Memtable bytes before a flush while loading, MiB (sets the SSTable count).
    #[arg(long, default_value_t = 4)]
    memtable_mib: usize,
}

pub fn run(options: Options) -> anyhow::Result<()> {
    if options.phase != Phase::Compact {
        fresh_dir(&options.dir)?;
    }
    let opts = options.clone();
    let report = on_shard(move || async move { phases(&opts).await })?;
    println!("{report}");
    Ok(())
}

async fn phases(options: &Options) -> anyhow::Result<String> {
    let mut def = table_def(
        "kv",
        compaction_options("SizeTieredCompactionStrategy", &[("enabled", "false")]),
    );
    def.id = TABLE_ID;
    let setup = EngineSetup {
        dir: options.dir.clone(),
        memtable_limit_bytes: options.memtable_mib << 20,
        sync: None,
    };
    crate::workload::start_engine(&setup, schema(vec![def])).await?;
    let mut out = String::new();
    if options.phase != Phase::Compact {
        out += &load(options).await?;
    }
    if options.phase != Phase::Load {
        out += &compact().await?;
    }
    Ok(out)
}

async fn load(options: &Options) -> anyhow::Result<String> {
    let keys = (options.load_mib << 20) / user_bytes(options.value_bytes);
    let now_us = scheduler::clock::now_micros();
    let started = Instant::now();
    crate::workload::insert(
        TABLE_ID,
        0,
        keys,
        options.value_bytes,
        4,
        Rc::new(move |_| now_us),
    )
    .await?;
    local::flush_all().await?;
    let table = local::table(TABLE_ID)?;
    Ok(format!(
        "loaded {keys} keys in {:.1} s: {} SSTables, {} bytes of Data.db\n",
        started.elapsed().as_secs_f64(),
        table.sstable_count(),
        table.stats().flushed_bytes,
    ))
}

async fn compact() -> anyhow::Result<String> {
    let table = local::table(TABLE_ID)?;
    let inputs = table.sstable_count();
    let before = table.stats();
    let cpu = process_cpu_secs();
    let started = Instant::now();
    local::major_compaction(TABLE_ID).await?;
    let elapsed = started.elapsed();
    let cpu = process_cpu_secs() - cpu;
    let after = table.stats();
    let read = after.compacted_bytes_in - before.compacted_bytes_in;
    let written = after.compacted_bytes_out - before.compacted_bytes_out;
    Ok(format!(
        "major compaction of {inputs} SSTables: {read} bytes in, {written} out, \
         {:.2} s, {:.1} MB/s in; process CPU {cpu:.2} s = {:.1} MB in per CPU-second\n",
        elapsed.as_secs_f64(),
        mb_per_sec(read, elapsed),
        read as f64 / 1e6 / cpu.max(1e-9),
    ))
}
