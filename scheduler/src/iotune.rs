//! `io-tune`: measures a disk and produces its [`DiskProperties`], the
//! model the IO scheduler charges requests against.
//!
//! The measurements, each at growing concurrency until more requests in
//! flight stop adding throughput (that concurrency saturates the disk):
//! 1. sequential 128 KiB writes over a scratch file: write bandwidth (this
//!    also fills the file, so the reads below hit written blocks and not
//!    unwritten extents the filesystem answers with zeroes);
//! 2. sequential 128 KiB reads of what was written: read bandwidth;
//! 3. random 4 KiB reads of it: read IOPS;
//! 4. random 4 KiB overwrites of it: write IOPS.
//!
//! Every measurement runs for the given duration per concurrency level;
//! with the default 5 s the whole run takes under a minute. The IO here
//! goes straight to glommio, around the IO queue: measuring the disk
//! through a scheduler that throttles to a model of the disk would measure
//! the model.
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::clock::{monotonic_now, Instant};
use crate::ioqueue::DiskProperties;
use crate::{run_shards, ShardSetConfig};

/// Size of the sequential requests (the per-IO cap of `scheduler::io`).
const SEQUENTIAL_IO_BYTES: usize = crate::io::MAX_IO_BYTES;
/// Size of the random requests.
const RANDOM_IO_BYTES: usize = 4096;
/// Concurrency levels tried for the bandwidth measurements.
const BANDWIDTH_CONCURRENCY: [usize; 3] = [2, 8, 32];
/// Concurrency levels tried for the IOPS measurements.
const IOPS_CONCURRENCY: [usize; 4] = [8, 32, 128, 256];
/// A level must beat the previous one by this factor to count as not
/// yet saturated.
const SATURATION_GAIN: f64 = 1.05;
/// Name of the scratch file, removed at the end.
pub const SCRATCH_FILE_NAME: &str = ".tessera-io-tune";

/// How long and how big `io-tune` measures.
#[derive(Debug, Clone)]
pub struct IoTuneOptions {
    /// Time per measurement and concurrency level.
    pub duration: Duration,
    /// Size of the scratch file; larger than the disk's cache gives honest
    /// numbers.
    pub file_size_bytes: u64,
}

impl Default for IoTuneOptions {
    fn default() -> Self {
        IoTuneOptions {
            duration: Duration::from_secs(5),
            file_size_bytes: 1 << 30,
        }
    }
}

/// Why a measurement failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoTuneError {
    #[error("io-tune on {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("io-tune on {dir}: {message}")]
    Runtime { dir: PathBuf, message: String },
    #[error("io-tune on {dir}: measured no progress in {what}")]
    NoProgress { dir: PathBuf, what: &'static str },
}

/// Measures the disk under `dir` (blocking; starts its own executor).
pub fn measure(dir: &Path, options: &IoTuneOptions) -> Result<DiskProperties, IoTuneError> {
    let runtime_error = |message: String| IoTuneError::Runtime {
        dir: dir.to_owned(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|source| IoTuneError::Io {
        dir: dir.to_owned(),
        source,
    })?;
    let target = dir.to_owned();
    let options_for_shard = options.clone();
    let mut results = run_shards(ShardSetConfig::new(1), move |_| {
        let dir = target.clone();
        let options = options_for_shard.clone();
        async move {
            measure_on_shard(&dir, &options)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .map_err(|e| runtime_error(e.to_string()))?;
    let rates = results.pop().expect("one shard").map_err(runtime_error)?;
    let mountpoint = mount_point(dir).map_err(|source| IoTuneError::Io {
        dir: dir.to_owned(),
        source,
    })?;
    let positive = |value: f64, what: &'static str| {
        if value >= 1.0 {
            Ok(value as u64)
        } else {
            Err(IoTuneError::NoProgress {
                dir: dir.to_owned(),
                what,
            })
        }
    };
    Ok(DiskProperties {
        mountpoint,
        read_iops: positive(rates.read_iops, "random reads")?,
        read_bandwidth: positive(rates.read_bandwidth, "sequential reads")?,
        write_iops: positive(rates.write_iops, "random writes")?,
        write_bandwidth: positive(rates.write_bandwidth, "sequential writes")?,
    })
}

/// The mount point of the filesystem holding `dir`: the highest ancestor
/// on the same device.
pub fn mount_point(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt as _;
    let canonical = std::fs::canonicalize(dir)?;
    let device = std::fs::metadata(&canonical)?.dev();
    let mut mount = canonical.clone();
    for ancestor in canonical.ancestors().skip(1) {
        match std::fs::metadata(ancestor) {
            Ok(metadata) if metadata.dev() == device => mount = ancestor.to_owned(),
            _ => break,
        }
    }
    Ok(mount)
}

#[derive(Debug, Default)]
struct Rates {
    read_iops: f64,
    read_bandwidth: f64,
    write_iops: f64,
    write_bandwidth: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    SequentialWrite,
    SequentialRead,
    RandomRead,
    RandomWrite,
}

impl Pattern {
    fn io_bytes(self) -> usize {
        match self {
            Pattern::SequentialWrite | Pattern::SequentialRead => SEQUENTIAL_IO_BYTES,
            Pattern::RandomRead | Pattern::RandomWrite => RANDOM_IO_BYTES,
        }
    }

    fn is_write(self) -> bool {
        matches!(self, Pattern::SequentialWrite | Pattern::RandomWrite)
    }
}

async fn measure_on_shard(dir: &Path, options: &IoTuneOptions) -> std::io::Result<Rates> {
    crate::io::prepare_device(dir).await?;
    let path = dir.join(SCRATCH_FILE_NAME);
    let file = glommio::io::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(&path)
        .await?;
    let file = Rc::new(file);
    let size = options.file_size_bytes.max(SEQUENTIAL_IO_BYTES as u64 * 8)
        / SEQUENTIAL_IO_BYTES as u64
        * SEQUENTIAL_IO_BYTES as u64;
    file.pre_allocate(size, false).await?;
    let rates = run_patterns(&file, size, options.duration).await;
    // Every worker is done, so this is the last reference.
    if let Ok(file) = Rc::try_unwrap(file) {
        file.close().await?;
    }
    let removed = crate::io::remove_file(&path).await;
    let rates = rates?;
    removed?;
    Ok(rates)
}

async fn run_patterns(
    file: &Rc<glommio::io::DmaFile>,
    size: u64,
    duration: Duration,
) -> std::io::Result<Rates> {
    let write = saturate(file, size, size, Pattern::SequentialWrite, duration).await?;
    // Reads only cover what the write phase reached.
    let written = write.bytes_reached.clamp(SEQUENTIAL_IO_BYTES as u64, size);
    let read = saturate(file, size, written, Pattern::SequentialRead, duration).await?;
    let read_iops = saturate(file, size, written, Pattern::RandomRead, duration).await?;
    let write_iops = saturate(file, size, written, Pattern::RandomWrite, duration).await?;
    Ok(Rates {
        write_bandwidth: write.bytes_per_second,
        read_bandwidth: read.bytes_per_second,
        read_iops: read_iops.ops_per_second,
        write_iops: write_iops.ops_per_second,
    })
}

#[derive(Debug, Default, Clone, Copy)]
struct Throughput {
    ops_per_second: f64,
    bytes_per_second: f64,
    /// The furthest byte a sequential pass reached.
    bytes_reached: u64,
}

/// Runs `pattern` at growing concurrency until throughput stops growing.
async fn saturate(
    file: &Rc<glommio::io::DmaFile>,
    size: u64,
    extent: u64,
    pattern: Pattern,
    duration: Duration,
) -> std::io::Result<Throughput> {
    let levels: &[usize] = match pattern {
        Pattern::SequentialWrite | Pattern::SequentialRead => &BANDWIDTH_CONCURRENCY,
        Pattern::RandomRead | Pattern::RandomWrite => &IOPS_CONCURRENCY,
    };
    let mut best = Throughput::default();
    let mut reached = 0;
    for &concurrency in levels {
        let run = run_level(file, size, extent, pattern, concurrency, duration).await?;
        reached = reached.max(run.bytes_reached);
        let improved = run.ops_per_second > best.ops_per_second * SATURATION_GAIN;
        if run.ops_per_second > best.ops_per_second {
            best = run;
        }
        if !improved {
            break;
        }
    }
    best.bytes_reached = reached;
    Ok(best)
}

/// Runs `pattern` with `concurrency` requests in flight for `duration`.
async fn run_level(
    file: &Rc<glommio::io::DmaFile>,
    size: u64,
    extent: u64,
    pattern: Pattern,
    concurrency: usize,
    duration: Duration,
) -> std::io::Result<Throughput> {
    let io_bytes = pattern.io_bytes() as u64;
    let blocks = (extent / io_bytes).max(1);
    let next_block = Rc::new(Cell::new(0u64));
    let started = monotonic_now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let file = file.clone();
            let next_block = next_block.clone();
            let seed = 0x9e37_79b9_7f4a_7c15 ^ (worker as u64 + 1);
            glommio::spawn_local(async move {
                worker_loop(&file, pattern, blocks, size, &next_block, seed, deadline).await
            })
        })
        .collect();
    let mut ops = 0u64;
    for worker in workers {
        ops += worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    Ok(Throughput {
        ops_per_second: ops as f64 / elapsed,
        bytes_per_second: (ops * io_bytes) as f64 / elapsed,
        bytes_reached: (next_block.get() * io_bytes).min(size),
    })
}

/// One in-flight slot: issues requests back to back until `deadline`;
/// returns how many completed.
async fn worker_loop(
    file: &glommio::io::DmaFile,
    pattern: Pattern,
    blocks: u64,
    size: u64,
    next_block: &Cell<u64>,
    mut rng: u64,
    deadline: Instant,
) -> std::io::Result<u64> {
    let io_bytes = pattern.io_bytes();
    let mut ops = 0;
    while monotonic_now() < deadline {
        let block = match pattern {
            Pattern::SequentialWrite | Pattern::SequentialRead => {
                let block = next_block.get();
                next_block.set(block + 1);
                block % blocks
            }
            Pattern::RandomRead | Pattern::RandomWrite => {
                rng = xorshift(rng);
                rng % blocks
            }
        };
        let pos = (block * io_bytes as u64).min(size - io_bytes as u64);
        if pattern.is_write() {
            let mut buffer = file.alloc_dma_buffer(io_bytes);
            buffer.as_bytes_mut().fill(0xa5);
            file.write_at(buffer, pos).await?;
        } else {
            file.read_at_aligned(pos, io_bytes).await?;
        }
        ops += 1;
    }
    Ok(ops)
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ioqueue::IoProperties;

    #[test]
    fn a_short_run_measures_every_rate_and_cleans_up() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scheduler-io-tune-test");
        let _ = std::fs::remove_dir_all(&dir);
        let options = IoTuneOptions {
            duration: Duration::from_millis(150),
            file_size_bytes: 8 << 20,
        };
        let disk = measure(&dir, &options).expect("io-tune runs");
        assert!(disk.read_iops > 0 && disk.write_iops > 0);
        assert!(disk.read_bandwidth > 0 && disk.write_bandwidth > 0);
        assert!(
            dir.starts_with(&disk.mountpoint)
                || std::fs::canonicalize(&dir)
                    .expect("dir")
                    .starts_with(&disk.mountpoint)
        );
        assert!(
            !dir.join(SCRATCH_FILE_NAME).exists(),
            "scratch file removed"
        );
        let properties = IoProperties { disks: vec![disk] };
        let output = dir.join("io_properties.yaml");
        properties.write(&output).expect("write");
        assert_eq!(IoProperties::load(&output).expect("read back"), properties);
    }

    #[test]
    fn mount_points_contain_their_directories() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mount = mount_point(dir).expect("mount point");
        assert!(std::fs::canonicalize(dir).expect("dir").starts_with(&mount));
    }
}
