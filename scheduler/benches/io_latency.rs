//! What the IO scheduler buys: the latency of 4 KiB reads issued at a fixed
//! rate from the Statement group (a) on an idle disk and (b) behind a flood
//! of 128 KiB writes from the Compaction group, and the write throughput
//! with and without the reads. Run it with the scheduler on and off:
//!
//! ```text
//! cargo bench -p scheduler --bench io_latency -- [--bypass] [--seconds 10]
//!     [--rate 500] [--writers 16] [--properties conf/io_properties.yaml] [--dir DIR]
//! ```
//!
//! Latency is measured from the moment each read was due, so a stalled
//! disk shows up in the numbers instead of delaying the next reads.
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use scheduler::clock::monotonic_now;
use scheduler::io::{self, DmaFile, MAX_IO_BYTES};
use scheduler::ioqueue::{self, IoConfig, IoProperties};
use scheduler::{run_shards, spawn_in, Group, ShardSetConfig};

/// Size of the file the reads hit (written before measuring).
const READ_FILE_BYTES: u64 = 64 << 20;
/// The writes wrap around in a file of this size.
const WRITE_FILE_BYTES: u64 = 512 << 20;
const READ_BYTES: usize = 4096;

#[derive(Debug, Clone)]
struct Args {
    bypass: bool,
    seconds: f64,
    rate: f64,
    writers: usize,
    properties: Option<PathBuf>,
    dir: PathBuf,
}

fn parse_args() -> Args {
    let mut args = Args {
        bypass: false,
        seconds: 10.0,
        rate: 500.0,
        writers: 16,
        properties: None,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/io-latency-bench"),
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--bypass" => args.bypass = true,
            "--seconds" => args.seconds = value().parse().expect("--seconds is a number"),
            "--rate" => args.rate = value().parse().expect("--rate is a number"),
            "--writers" => args.writers = value().parse().expect("--writers is a number"),
            "--properties" => args.properties = Some(PathBuf::from(value())),
            "--dir" => args.dir = PathBuf::from(value()),
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    let mut config = IoConfig::default();
    if let Some(path) = &args.properties {
        let properties = IoProperties::load(path).expect("readable io_properties.yaml");
        config.disk = properties.disks[0].clone();
    }
    config.scheduling = !args.bypass;
    println!(
        "scheduler {}, model {:?}, reads at {}/s, {} writers, {} s per phase",
        if args.bypass { "BYPASSED" } else { "on" },
        config.disk,
        args.rate,
        args.writers,
        args.seconds
    );
    ioqueue::configure(config).expect("configured once");
    run_shards(ShardSetConfig::new(1), move |_| bench(args.clone())).expect("shard runs");
}

async fn bench(args: Args) {
    io::create_dir_all(&args.dir).await.expect("create dir");
    io::prepare_device(&args.dir).await.expect("probe");
    let reads = Rc::new(prefilled(&args).await);
    let writes = Rc::new(
        DmaFile::open_or_create(&args.dir.join("writes"))
            .await
            .expect("open"),
    );
    let duration = Duration::from_secs_f64(args.seconds);

    let idle = queries(&reads, duration, args.rate).await;
    report("reads, idle disk", &idle);

    let alone = write_flood(&writes, args.writers, duration).await;
    println!("writes alone: {:.0} MiB/s", alone / (1 << 20) as f64);

    let flood = Rc::new(Cell::new(true));
    let background = {
        let (writes, flood) = (writes.clone(), flood.clone());
        let writers = args.writers;
        scheduler::spawn_local_task(async move { write_until(&writes, writers, &flood).await })
    };
    let busy = queries(&reads, duration, args.rate).await;
    flood.set(false);
    let written = background.await;
    report("reads, behind writes", &busy);
    println!(
        "writes with reads: {:.0} MiB/s",
        written as f64 / duration.as_secs_f64() / (1 << 20) as f64
    );
    for stats in ioqueue::io_stats() {
        if stats.ops > 0 {
            println!(
                "  class {:<11} ops {:>8} bytes {:>12} shares {}",
                stats.class.name(),
                stats.ops,
                stats.bytes,
                stats.shares
            );
        }
    }
    for file in [reads, writes] {
        if let Ok(file) = Rc::try_unwrap(file) {
            file.close().await.expect("close");
        }
    }
}

/// The file the reads hit, written once.
async fn prefilled(args: &Args) -> DmaFile {
    let file = DmaFile::open_or_create(&args.dir.join("reads"))
        .await
        .expect("open");
    if file.file_size().await.expect("size") >= READ_FILE_BYTES {
        return file;
    }
    let mut pos = 0;
    while pos < READ_FILE_BYTES {
        let mut buffer = file.alloc_buffer(MAX_IO_BYTES);
        buffer.as_bytes_mut().fill(0x5a);
        file.write_at(buffer, pos).await.expect("prefill");
        pos += MAX_IO_BYTES as u64;
    }
    file.fdatasync().await.expect("sync");
    file
}

/// Issues 4 KiB random reads at `rate` per second for `duration`, each in
/// its own Statement-group task; returns their latencies in nanoseconds.
async fn queries(file: &Rc<DmaFile>, duration: Duration, rate: f64) -> Vec<u64> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let count = (duration.as_secs_f64() * rate) as u64;
    let start = monotonic_now();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut tasks = Vec::new();
    for index in 0..count {
        let due = start + interval.mul_f64(index as f64);
        let now = monotonic_now();
        if due > now {
            scheduler::sleep(due - now).await;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let pos = rng % (READ_FILE_BYTES / READ_BYTES as u64) * READ_BYTES as u64;
        let file = file.clone();
        tasks.push(spawn_in(Group::Statement, async move {
            file.read_at(pos, READ_BYTES).await.expect("read");
            u64::try_from(due.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await);
    }
    latencies
}

/// Writes flat out for `duration`; returns bytes per second.
async fn write_flood(file: &Rc<DmaFile>, writers: usize, duration: Duration) -> f64 {
    let flood = Rc::new(Cell::new(true));
    let stopper = {
        let flood = flood.clone();
        scheduler::spawn_local_task(async move {
            scheduler::sleep(duration).await;
            flood.set(false);
        })
    };
    let written = write_until(file, writers, &flood).await;
    stopper.await;
    written as f64 / duration.as_secs_f64()
}

/// `writers` Compaction-group tasks writing 128 KiB blocks in sequence
/// while `flood` holds; returns the bytes written.
async fn write_until(file: &Rc<DmaFile>, writers: usize, flood: &Rc<Cell<bool>>) -> u64 {
    let next = Rc::new(Cell::new(0u64));
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (file, flood, next) = (file.clone(), flood.clone(), next.clone());
            spawn_in(Group::Compaction, async move {
                let mut written = 0;
                while flood.get() {
                    let pos = next.get() % WRITE_FILE_BYTES;
                    next.set(pos + MAX_IO_BYTES as u64);
                    let buffer = file.alloc_buffer(MAX_IO_BYTES);
                    file.write_at(buffer, pos).await.expect("write");
                    written += MAX_IO_BYTES as u64;
                }
                written
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        written += task.await;
    }
    written
}

fn report(what: &str, latencies: &[u64]) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let at = |quantile: f64| {
        let index = ((sorted.len() as f64 * quantile) as usize).min(sorted.len().saturating_sub(1));
        sorted.get(index).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "{what}: n {} p50 {:.0} µs p99 {:.0} µs p99.9 {:.0} µs max {:.0} µs",
        sorted.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}
