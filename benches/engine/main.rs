//! Storage-engine benchmarks (benches/README.md, "Storage engine"): the
//! engine of one shard driven in process, without CQL, against a yardstick
//! measured on the same disk in the same run (fio, fjall).
//!
//! Subcommands, one per figure:
//! - `commitlog`: batch-mode commitlog write bandwidth with many concurrent
//!   appenders (the yardstick is fio, run by the runbook around it).
//! - `insert` / `fjall`: sustained inserts into the engine (commitlog,
//!   memtable, flushes, compactions) and the same workload into fjall.
//! - `write-amp`: bytes written by flush and compaction per byte of user
//!   data, for one compaction strategy.
//! - `compaction`: a major compaction alone, MB/s of input and CPU seconds
//!   (the load and the compaction can run as separate processes).
//! - `io-latency`: single-partition reads at a fixed rate from SSTables,
//!   idle and while a major compaction runs on the same shard, with the IO
//!   scheduler on or bypassed.
//!
//! It embeds the engine the node runs (`cluster::local`: commitlog,
//! memtables, background flushes and compactions) rather than starting a
//! node, so that a major compaction can be started at a chosen moment.
mod commitlog_bench;
mod compaction_bench;
mod insert_bench;
mod io_latency_bench;
mod workload;
mod write_amp_bench;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "Tessera storage-engine benchmarks")]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Appended by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    Commitlog(commitlog_bench::Options),
    Insert(insert_bench::Options),
    Fjall(insert_bench::FjallOptions),
    WriteAmp(write_amp_bench::Options),
    IoLatency(io_latency_bench::Options),
    Compaction(compaction_bench::Options),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match args.command {
        Command::Commitlog(options) => commitlog_bench::run(options),
        Command::Insert(options) => insert_bench::run(options),
        Command::Fjall(options) => insert_bench::run_fjall(options),
        Command::WriteAmp(options) => write_amp_bench::run(options),
        Command::IoLatency(options) => io_latency_bench::run(options),
        Command::Compaction(options) => compaction_bench::run(options),
    }
}
