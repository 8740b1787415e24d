//! The compaction log: what makes a compaction atomic across a crash.
//!
//! A crash mid-compaction must leave either the inputs or the outputs served, never
//! both and never neither. Each compaction keeps a small log, `compaction-<id>.log` in
//! the table directory (`id` is the smallest input generation: inputs of concurrent
//! compactions are disjoint and generations are never reused). The steps:
//!
//! 1. [`CompactionTxn::begin`] writes the *begin* record (the input generations),
//!    fdatasyncs it and syncs the directory, before any output exists.
//! 2. Before each output SSTable is created, [`CompactionTxn::add_output`] appends an
//!    *output* record with its generation and fdatasyncs it.
//! 3. Once every output has its TOC (the writer made it durable),
//!    [`CompactionTxn::commit`] appends the *commit* record and fdatasyncs it. This is
//!    the commit point: from here on the outputs are the truth.
//! 4. The caller swaps its in-memory SSTable list (outputs in, inputs out), then
//!    [`CommittedCompaction::finish`] deletes the inputs (each TOC first, so a
//!    half-deleted SSTable is never complete), syncs the directory, removes the log and
//!    syncs the directory again. [`CommittedCompaction::finish_gradually`] also shrinks
//!    each large file in steps before unlinking it (after the TOCs are durably gone, so
//!    a crash mid-way leaves incomplete SSTables, removed at start like any other).
//!
//! [`CompactionTxn::abort`] undoes an uncommitted compaction the same way with the
//! outputs. [`recover`], run at start before SSTables are listed, finishes whatever a
//! crash interrupted: no valid begin record — nothing was created, remove the log;
//! begin without commit — delete every listed output, keep the inputs; commit — delete
//! the inputs that are left. Either way the log goes last, so a crash during recovery
//! is recovered again the same way.
//!
//! Records are written once each at a block boundary and never rewritten, so a torn
//! write can only damage the record being written, which was not yet relied on; a
//! damaged record followed by a valid one is corruption and recovery refuses to guess.

use std::path::{Path, PathBuf};

use scheduler::io::{self, DmaFile, MAX_IO_BYTES};

use super::CompactionError;
use crate::sstable::Component;

const MAGIC: &[u8; 4] = b"TSCL";
const LOG_VERSION: u32 = 1;
/// magic, version, kind, sequence, count.
const HEADER_BYTES: usize = 4 + 4 + 1 + 4 + 4;
/// Records start at multiples of this, whatever the device: a log stays readable on a
/// device of another alignment. Direct IO needs the alignment to divide it.
pub const LOG_BLOCK_BYTES: usize = 4096;

/// What a log record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordKind {
    Begin = 1,
    Output = 2,
    Commit = 3,
}

impl RecordKind {
    fn from_byte(b: u8) -> Option<RecordKind> {
        match b {
            1 => Some(RecordKind::Begin),
            2 => Some(RecordKind::Output),
            3 => Some(RecordKind::Commit),
            _ => None,
        }
    }
}

/// `magic | version u32 | kind u8 | sequence u32 | count u32 | count × generation u64 |
/// crc32` (big-endian; the CRC covers every byte before it).
fn encode_record(kind: RecordKind, sequence: u32, generations: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + 8 * generations.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&LOG_VERSION.to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&sequence.to_be_bytes());
    let count = u32::try_from(generations.len()).expect("a compaction has few inputs");
    out.extend_from_slice(&count.to_be_bytes());
    for g in generations {
        out.extend_from_slice(&g.to_be_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// One record decoded at `offset`, and its length; `None` if no valid record is there.
fn decode_record(bytes: &[u8]) -> Option<(RecordKind, u32, Vec<u64>, usize)> {
    let be32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    if bytes.get(..4)? != MAGIC || be32(4)? != LOG_VERSION {
        return None;
    }
    let kind = RecordKind::from_byte(*bytes.get(8)?)?;
    let sequence = be32(9)?;
    let count = be32(13)? as usize;
    let body = HEADER_BYTES.checked_add(count.checked_mul(8)?)?;
    let stored = be32(body)?;
    if crc32fast::hash(&bytes[..body]) != stored {
        return None;
    }
    let generations = bytes[HEADER_BYTES..body]
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8-byte chunks")))
        .collect();
    Some((kind, sequence, generations, body + 4))
}

/// A compaction's log as recovery reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct LogState {
    inputs: Option<Vec<u64>>,
    outputs: Vec<u64>,
    committed: bool,
}

/// Parses a whole log.
fn parse_log(path: &Path, bytes: &[u8]) -> Result<LogState, CompactionError> {
    let block = LOG_BLOCK_BYTES;
    let corrupt = |reason: String| CompactionError::CorruptLog {
        path: path.to_path_buf(),
        reason,
    };
    let mut state = LogState::default();
    let mut offset = 0;
    let mut sequence = 0;
    while offset < bytes.len() {
        let Some((kind, seq, generations, len)) = decode_record(&bytes[offset..]) else {
            // A torn last record is normal after a crash; a valid one after it is not.
            let later = (offset + block..bytes.len())
                .step_by(block)
                .any(|at| decode_record(&bytes[at..]).is_some());
            if later {
                return Err(corrupt(format!("damaged record at offset {offset}")));
            }
            break;
        };
        let expected = match (sequence, kind) {
            (0, RecordKind::Begin) => true,
            (0, _) | (_, RecordKind::Begin) => false,
            _ => !state.committed,
        };
        if !expected || seq != sequence {
            return Err(corrupt(format!(
                "record {seq} ({kind:?}) out of place at offset {offset}"
            )));
        }
        match kind {
            RecordKind::Begin => state.inputs = Some(generations),
            RecordKind::Output => state.outputs.extend(generations),
            RecordKind::Commit => state.committed = true,
        }
        sequence += 1;
        offset += len.div_ceil(block) * block;
    }
    Ok(state)
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CompactionError {
    let path = path.to_path_buf();
    move |source| CompactionError::Io { op, path, source }
}

/// The log file's name for a compaction whose smallest input generation is `id`.
pub fn log_file_name(id: u64) -> String {
    format!("compaction-{id}.log")
}

/// An open log being appended.
struct LogWriter {
    path: PathBuf,
    file: DmaFile,
    /// Offset of the next record (a multiple of [`LOG_BLOCK_BYTES`]).
    next_offset: u64,
    sequence: u32,
}

impl LogWriter {
    async fn append(
        &mut self,
        kind: RecordKind,
        generations: &[u64],
    ) -> Result<(), CompactionError> {
        let record = encode_record(kind, self.sequence, generations);
        for (i, piece) in record.chunks(MAX_IO_BYTES).enumerate() {
            let len = piece.len().div_ceil(LOG_BLOCK_BYTES) * LOG_BLOCK_BYTES;
            let mut buffer = self.file.alloc_buffer(len);
            let bytes = buffer.as_bytes_mut();
            bytes.fill(0);
            bytes[..piece.len()].copy_from_slice(piece);
            let at = self.next_offset + (i * MAX_IO_BYTES) as u64;
            self.file
                .write_at(buffer, at)
                .await
                .map_err(io_error("write", &self.path))?;
        }
        self.file
            .fdatasync()
            .await
            .map_err(io_error("fdatasync", &self.path))?;
        self.next_offset += (record.len().div_ceil(LOG_BLOCK_BYTES) * LOG_BLOCK_BYTES) as u64;
        self.sequence += 1;
        Ok(())
    }

    async fn close(self) -> Result<(), CompactionError> {
        self.file
            .close()
            .await
            .map_err(io_error("close", &self.path))
    }
}

/// A compaction in progress: its log is durable and lists its inputs and outputs.
/// Dropped without [`CompactionTxn::commit`] or [`CompactionTxn::abort`] (a failed
/// IO, a shard stopping), it leaves its log for [`recover`] at the next start.
pub struct CompactionTxn {
    dir: PathBuf,
    inputs: Vec<u64>,
    outputs: Vec<u64>,
    log: LogWriter,
}

impl std::fmt::Debug for CompactionTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactionTxn")
            .field("log", &self.log.path)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl CompactionTxn {
    /// Starts the compaction of `inputs` (generations in `dir`): writes and syncs the
    /// begin record. Fails if a log for the same id exists (run [`recover`] first).
    pub async fn begin(dir: &Path, inputs: &[u64]) -> Result<CompactionTxn, CompactionError> {
        let id = *inputs.iter().min().ok_or(CompactionError::NoInputs)?;
        let path = dir.join(log_file_name(id));
        let probe = path.clone();
        let exists = scheduler::spawn_blocking(move || probe.try_exists()).await;
        if exists.map_err(io_error("stat", &path))? {
            return Err(CompactionError::LogExists { path });
        }
        io::prepare_device(dir)
            .await
            .map_err(io_error("prepare device", dir))?;
        let file = DmaFile::open_or_create(&path)
            .await
            .map_err(io_error("create", &path))?;
        if !(LOG_BLOCK_BYTES as u64).is_multiple_of(file.alignment()) {
            let alignment = file.alignment();
            let _ = file.close().await;
            let _ = io::remove_file(&path).await;
            return Err(CompactionError::Io {
                op: "align",
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("direct-IO alignment {alignment} does not divide {LOG_BLOCK_BYTES}"),
                ),
            });
        }
        let mut log = LogWriter {
            path,
            file,
            next_offset: 0,
            sequence: 0,
        };
        log.append(RecordKind::Begin, inputs).await?;
        // The log's directory entry must be durable before any output exists.
        io::sync_directory(dir)
            .await
            .map_err(io_error("sync directory", dir))?;
        Ok(CompactionTxn {
            dir: dir.to_path_buf(),
            inputs: inputs.to_vec(),
            outputs: Vec::new(),
            log,
        })
    }

    /// Records that output `generation` is about to be created (call before creating
    /// it, so an interrupted compaction's outputs are all known). The generation must
    /// be fresh: if any SSTable of it has started (its `Data.db` or TOC exists), this
    /// fails with `OutputExists` rather than list, and later delete, files it does not
    /// own.
    pub async fn add_output(&mut self, generation: u64) -> Result<(), CompactionError> {
        let ours = self.inputs.contains(&generation) || self.outputs.contains(&generation);
        let data = Component::Data.path(&self.dir, generation);
        let toc = Component::Toc.path(&self.dir, generation);
        let exists = scheduler::spawn_blocking(move || {
            Ok::<bool, std::io::Error>(data.try_exists()? || toc.try_exists()?)
        })
        .await
        .map_err(io_error("stat", &self.dir))?;
        if ours || exists {
            return Err(CompactionError::OutputExists {
                dir: self.dir.clone(),
                generation,
            });
        }
        self.log.append(RecordKind::Output, &[generation]).await?;
        self.outputs.push(generation);
        Ok(())
    }

    /// The input generations.
    pub fn inputs(&self) -> &[u64] {
        &self.inputs
    }

    /// The output generations recorded so far.
    pub fn outputs(&self) -> &[u64] {
        &self.outputs
    }

    /// The table directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the outputs the truth: appends and syncs the commit record. Every output
    /// must be complete (its writer finished) before this is called.
    pub async fn commit(mut self) -> Result<CommittedCompaction, CompactionError> {
        self.log.append(RecordKind::Commit, &[]).await?;
        Ok(CommittedCompaction {
            dir: self.dir,
            inputs: self.inputs,
            outputs: self.outputs,
            log: self.log,
        })
    }

    /// Abandons the compaction: deletes every output, then the log. The inputs stay.
    pub async fn abort(self) -> Result<(), CompactionError> {
        delete_sstables(&self.dir, &self.outputs).await?;
        remove_log(&self.dir, self.log).await
    }
}

/// A committed compaction whose inputs are not yet deleted.
pub struct CommittedCompaction {
    dir: PathBuf,
    inputs: Vec<u64>,
    outputs: Vec<u64>,
    log: LogWriter,
}

impl std::fmt::Debug for CommittedCompaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommittedCompaction")
            .field("log", &self.log.path)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl CommittedCompaction {
    /// The input generations (to take out of the served SSTable list before `finish`).
    pub fn inputs(&self) -> &[u64] {
        &self.inputs
    }

    /// The output generations (to open and serve before `finish`).
    pub fn outputs(&self) -> &[u64] {
        &self.outputs
    }

    /// Deletes the inputs, then the log. Call once no new read can reach the inputs;
    /// reads already holding them keep working (the files stay open).
    pub async fn finish(self) -> Result<(), CompactionError> {
        delete_sstables(&self.dir, &self.inputs).await?;
        remove_log(&self.dir, self.log).await
    }

    /// [`Self::finish`], shrinking each large file in steps before it is unlinked (see
    /// [`SHRINK_STEP_BYTES`]; a file with other hard links is unlinked as it is). Call only once nothing holds the inputs open: a read
    /// still holding one would find its files cut short.
    pub async fn finish_gradually(self) -> Result<(), CompactionError> {
        delete_files(&self.dir, &self.inputs, true).await?;
        remove_log(&self.dir, self.log).await
    }
}

async fn remove_log(dir: &Path, log: LogWriter) -> Result<(), CompactionError> {
    let path = log.path.clone();
    log.close().await?;
    // Whatever the log made happen must be durable before the log goes.
    io::sync_directory(dir)
        .await
        .map_err(io_error("sync directory", dir))?;
    io::remove_file(&path)
        .await
        .map_err(io_error("remove", &path))?;
    io::sync_directory(dir)
        .await
        .map_err(io_error("sync directory", dir))
}

/// Deletes every file of the given SSTable generations in `dir` (TOC first, so an
/// SSTable is incomplete from the first removal on; the directory is synced after the
/// TOCs go and again at the end).
/// Generations with no files left are skipped. Returns the files removed.
pub async fn delete_sstables(
    dir: &Path,
    generations: &[u64],
) -> Result<Vec<PathBuf>, CompactionError> {
    delete_files(dir, generations, false).await
}

/// Files larger than this are shrunk by this much at a time, [`SHRINK_PAUSE`] between
/// steps, before a gradual delete unlinks them. Unlinking a file of hundreds of MiB frees
/// its extents in one step (~110 ms for 700 MiB on the development machine's disk), and
/// reads on the shard stalled for 40-60 ms behind it; a step frees ~1.3 ms worth (64 MiB
/// steps 2 ms apart left the worst read of a 4 GiB compaction's end at 20 ms, 8 MiB
/// steps 5 ms apart at 15 ms, and p99.9 over the compaction 11.0 -> 5.9 ms).
pub const SHRINK_STEP_BYTES: u64 = 8 * 1024 * 1024;

/// The pause between two shrinking steps.
pub const SHRINK_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Shrinks `path` (of `len` bytes) to nothing in steps of [`SHRINK_STEP_BYTES`].
async fn shrink_file(path: &Path, len: u64) -> Result<(), CompactionError> {
    let file = io::DmaFile::open(path)
        .await
        .map_err(io_error("open", path))?;
    let mut size = len;
    while size > 0 {
        size = size.saturating_sub(SHRINK_STEP_BYTES);
        file.truncate(size)
            .await
            .map_err(io_error("truncate", path))?;
        scheduler::sleep(SHRINK_PAUSE).await;
    }
    file.close().await.map_err(io_error("close", path))
}

async fn delete_files(
    dir: &Path,
    generations: &[u64],
    gradually: bool,
) -> Result<Vec<PathBuf>, CompactionError> {
    if generations.is_empty() {
        return Ok(Vec::new());
    }
    let entries = io::list_directory(dir)
        .await
        .map_err(io_error("list", dir))?;
    let files: Vec<&io::DirEntry> = entries
        .iter()
        .filter(|e| {
            generations
                .iter()
                .any(|g| e.name.starts_with(&format!("tsr-{g}-")))
        })
        .collect();
    // Every TOC goes first, durably: a crash later leaves incomplete SSTables
    // (removed at start), never a TOC naming missing components.
    let (tocs, rest): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|e| e.name.ends_with("-TOC.txt"));
    let mut removed = Vec::new();
    for batch in [tocs, rest] {
        for entry in batch {
            // TOCs are gone and durably so: the SSTable is incomplete already.
            // A file with other hard links (a snapshot, a backup) is not
            // shrunk: that would cut the other copy short too, and its
            // unlink frees nothing anyway.
            if gradually
                && entry.len_bytes > SHRINK_STEP_BYTES
                && entry.links == 1
                && !entry.name.ends_with("-TOC.txt")
            {
                shrink_file(&entry.path, entry.len_bytes).await?;
            }
            io::remove_file(&entry.path)
                .await
                .map_err(io_error("remove", &entry.path))?;
            removed.push(entry.path.clone());
        }
        io::sync_directory(dir)
            .await
            .map_err(io_error("sync directory", dir))?;
    }
    Ok(removed)
}

/// What [`recover`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Logs found and removed.
    pub logs: usize,
    /// Generations of uncommitted outputs deleted (their compactions rolled back).
    pub rolled_back: Vec<u64>,
    /// Generations of committed compactions' inputs deleted (rolled forward).
    pub rolled_forward: Vec<u64>,
}

/// Finishes or undoes every compaction a crash interrupted in `dir`. Run it before the
/// directory's SSTables are listed.
pub async fn recover(dir: &Path) -> Result<RecoveryReport, CompactionError> {
    recover_owned(dir, &|_| true).await
}

/// [`recover`] for the logs whose id (the smallest input generation, the `<id>` of
/// `compaction-<id>.log`) `owns` accepts: several shards share a directory and each
/// recovers only its own compactions.
pub async fn recover_owned(
    dir: &Path,
    owns: &dyn Fn(u64) -> bool,
) -> Result<RecoveryReport, CompactionError> {
    let entries = match io::list_directory(dir).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RecoveryReport::default()),
        listed => listed.map_err(io_error("list", dir))?,
    };
    let logs: Vec<&io::DirEntry> = entries
        .iter()
        .filter(|e| {
            let id = e
                .name
                .strip_prefix("compaction-")
                .and_then(|rest| rest.strip_suffix(".log"))
                .and_then(|id| id.parse::<u64>().ok());
            e.is_file && id.is_some_and(owns)
        })
        .collect();
    let mut report = RecoveryReport::default();
    if logs.is_empty() {
        return Ok(report);
    }
    io::prepare_device(dir)
        .await
        .map_err(io_error("prepare device", dir))?;
    for entry in logs {
        let bytes = read_log(&entry.path).await?;
        let state = parse_log(&entry.path, &bytes)?;
        if state.committed {
            let inputs = state.inputs.unwrap_or_default();
            delete_sstables(dir, &inputs).await?;
            report.rolled_forward.extend(inputs);
        } else {
            delete_sstables(dir, &state.outputs).await?;
            report.rolled_back.extend(state.outputs);
        }
        tracing::info!(log = %entry.path.display(), committed = state.committed, "compaction recovered");
        io::remove_file(&entry.path)
            .await
            .map_err(io_error("remove", &entry.path))?;
        report.logs += 1;
    }
    io::sync_directory(dir)
        .await
        .map_err(io_error("sync directory", dir))?;
    Ok(report)
}

/// A whole log file.
async fn read_log(path: &Path) -> Result<Vec<u8>, CompactionError> {
    let file = DmaFile::open(path).await.map_err(io_error("open", path))?;
    let size = file.file_size().await.map_err(io_error("stat", path))?;
    let mut bytes = Vec::with_capacity(size as usize);
    let mut at = 0;
    let result = async {
        while at < size {
            let want = ((size - at) as usize).min(MAX_IO_BYTES);
            let got = file
                .read_at(at, want)
                .await
                .map_err(io_error("read", path))?;
            if got.is_empty() {
                break;
            }
            at += got.len() as u64;
            bytes.extend_from_slice(&got);
        }
        Ok::<(), CompactionError>(())
    }
    .await;
    file.close().await.map_err(io_error("close", path))?;
    result.map(|()| bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(records: &[(RecordKind, u32, &[u64])]) -> Vec<u8> {
        let block = LOG_BLOCK_BYTES;
        let mut out = Vec::new();
        for (kind, seq, generations) in records {
            let r = encode_record(*kind, *seq, generations);
            out.extend_from_slice(&r);
            out.resize(out.len().div_ceil(block) * block, 0);
        }
        out
    }

    #[test]
    fn records_parse_and_a_torn_tail_is_ignored() {
        let p = Path::new("x.log");
        let full = log(&[
            (RecordKind::Begin, 0, &[4, 5]),
            (RecordKind::Output, 1, &[9]),
            (RecordKind::Output, 2, &[10]),
            (RecordKind::Commit, 3, &[]),
        ]);
        let state = parse_log(p, &full).expect("parse");
        assert_eq!(state.inputs, Some(vec![4, 5]));
        assert_eq!(state.outputs, vec![9, 10]);
        assert!(state.committed);
        // Tear the commit record: the compaction is uncommitted.
        let mut torn = full.clone();
        torn[3 * LOG_BLOCK_BYTES + 10] ^= 0x40;
        let state = parse_log(p, &torn).expect("torn tail");
        assert!(!state.committed);
        assert_eq!(state.outputs, vec![9, 10]);
        // Damage in the middle, with valid records after it, is corruption.
        let mut damaged = full.clone();
        damaged[LOG_BLOCK_BYTES + 13] ^= 1;
        assert!(matches!(
            parse_log(p, &damaged),
            Err(CompactionError::CorruptLog { .. })
        ));
        assert_eq!(parse_log(p, &[]).expect("empty"), LogState::default());
        let zeroes = vec![0u8; 2 * LOG_BLOCK_BYTES];
        assert_eq!(parse_log(p, &zeroes).expect("zeroes"), LogState::default());
    }

    #[test]
    fn records_out_of_place_are_corruption() {
        let p = Path::new("x.log");
        for records in [
            vec![(RecordKind::Output, 0, &[1u64][..])],
            vec![
                (RecordKind::Begin, 0, &[1][..]),
                (RecordKind::Begin, 1, &[2][..]),
            ],
            vec![
                (RecordKind::Begin, 0, &[1][..]),
                (RecordKind::Output, 2, &[2][..]),
            ],
            vec![
                (RecordKind::Begin, 0, &[1][..]),
                (RecordKind::Commit, 1, &[][..]),
                (RecordKind::Output, 2, &[2][..]),
            ],
        ] {
            let bytes = log(&records);
            assert!(
                matches!(
                    parse_log(p, &bytes),
                    Err(CompactionError::CorruptLog { .. })
                ),
                "{records:?}"
            );
        }
    }
}
