//! Direct (O_DIRECT) file IO for the storage engine's own files: the thin
//! wrapper over glommio's DMA files that the commitlog (and later SSTables)
//! use, so that only this crate touches files and the glommio pitfalls are
//! handled in one place.
//!
//! What this module takes care of (see the project's dependency notes):
//! - files are always opened read+write (glommio's `create` is write-only);
//! - a device must first be DMA-opened on a non-empty file in each thread,
//!   or glommio may decide a virtio disk supports polled IO and fail every
//!   later read: [`prepare_device`] does that with a small probe file;
//! - single reads are capped at [`MAX_IO_BYTES`] (a read larger than the
//!   device's `max_sectors_kb` can hang the process), writes at
//!   [`MAX_WRITE_BYTES`];
//! - buffers come from [`DmaFile::alloc_buffer`], offsets and lengths are
//!   multiples of [`DmaFile::alignment`]; a file must be `close()`d.
//!
//! Every read, write and fdatasync waits its turn in the shard's IO queue
//! ([`crate::ioqueue`]) in an IO class: the one a file was given with
//! [`DmaFile::with_class`], else the one the issuing task's CPU group maps
//! to (a task in the Compaction group does compaction-class IO). Metadata
//! operations (open, preallocate, truncate, size, close) are not queued.
//!
//! Errors are plain `std::io::Error`s: the callers give them their meaning.
use std::io;
use std::path::{Path, PathBuf};

pub use glommio::io::DmaBuffer;

use crate::ioqueue::{self, IoClass, IoKind};

/// The largest single read this module issues, and the size writers cut
/// their streams into.
pub const MAX_IO_BYTES: usize = 128 * 1024;
/// The largest single write this module issues. Above [`MAX_IO_BYTES`] so
/// that a writer that must wait for its write (the commitlog's group commit
/// of ~160 KiB) issues one IO instead of two: the hang of oversized IOs was
/// seen with reads, and this stays below the kernel's default
/// `max_sectors_kb` (1280 KiB) and the smallest we met on a device.
pub const MAX_WRITE_BYTES: usize = 256 * 1024;

/// Name of the probe file [`prepare_device`] keeps in a directory.
pub const PROBE_FILE_NAME: &str = ".tessera-dma-probe";

/// Size of the probe file: one page, the largest alignment we expect.
const PROBE_FILE_BYTES: usize = 4096;

/// An open file doing direct IO, readable and writable.
#[derive(Debug)]
pub struct DmaFile {
    file: glommio::io::DmaFile,
    /// The class every IO of this file gets, overriding the task's group.
    class: Option<IoClass>,
}

impl DmaFile {
    /// Opens `path` for reading and writing, creating it (empty) if missing.
    pub async fn open_or_create(path: &Path) -> io::Result<DmaFile> {
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .dma_open(path)
            .await?;
        Ok(DmaFile { file, class: None })
    }

    /// Opens an existing `path` for reading and writing.
    pub async fn open(path: &Path) -> io::Result<DmaFile> {
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(path)
            .await?;
        Ok(DmaFile { file, class: None })
    }

    /// Opens an existing `path` for writes that are durable when they
    /// complete (`O_DSYNC`): each write carries its own sync, so a log
    /// that must make every write durable needs no separate `fdatasync`
    /// (nor the trip through the shard between the two).
    pub async fn open_write_through(path: &Path) -> io::Result<DmaFile> {
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .dma_open(path)
            .await?;
        Ok(DmaFile { file, class: None })
    }

    /// This file with every IO in `class`, whatever the issuing task's
    /// group (for the few cases the group does not say it, e.g. a
    /// statement's task reading on behalf of streaming).
    pub fn with_class(mut self, class: IoClass) -> DmaFile {
        self.class = Some(class);
        self
    }

    /// The class this file's IO is pinned to, if any.
    pub fn class(&self) -> Option<IoClass> {
        self.class
    }

    fn class_for(&self, kind: IoKind) -> IoClass {
        self.class.unwrap_or_else(|| ioqueue::current_class(kind))
    }

    /// The alignment offsets, lengths and buffers must have.
    pub fn alignment(&self) -> u64 {
        self.file.alignment()
    }

    /// A zeroed buffer of `size` bytes suitable for direct IO on this file.
    pub fn alloc_buffer(&self, size: usize) -> DmaBuffer {
        let mut buffer = self.alloc_buffer_for_overwrite(size);
        buffer.as_bytes_mut().fill(0);
        buffer
    }

    /// A buffer like [`DmaFile::alloc_buffer`] but holding whatever bytes
    /// its memory last held: for a caller that writes every byte itself
    /// (the commitlog's group commit, where zeroing first would cost a pass
    /// over every written byte on the appenders' critical path).
    pub fn alloc_buffer_for_overwrite(&self, size: usize) -> DmaBuffer {
        self.file.alloc_dma_buffer(size)
    }

    /// Writes all of `buffer` at `pos` (both aligned). Fails on a short
    /// write, since a direct write of aligned blocks is never expected to
    /// be short.
    pub async fn write_at(&self, buffer: DmaBuffer, pos: u64) -> io::Result<()> {
        let len = buffer.len();
        assert!(
            len <= MAX_WRITE_BYTES,
            "write of {len} bytes exceeds the per-IO cap"
        );
        let class = self.class_for(IoKind::Write);
        let write = self.file.write_at(buffer, pos);
        let written = ioqueue::submit(class, IoKind::Write, len as u64, write).await?;
        if written != len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short direct write: {written} of {len} bytes at {pos}"),
            ));
        }
        Ok(())
    }

    /// Reads up to `len` bytes at `pos` (both aligned, `len` at most
    /// [`MAX_IO_BYTES`]); fewer bytes come back at the end of the file.
    pub async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        assert!(
            len <= MAX_IO_BYTES,
            "read of {len} bytes exceeds the per-IO cap"
        );
        let class = self.class_for(IoKind::Read);
        let read = self.file.read_at_aligned(pos, len);
        let result = ioqueue::submit(class, IoKind::Read, len as u64, read).await?;
        Ok(result.to_vec())
    }

    /// Makes the file's written data durable (`fdatasync`).
    pub async fn fdatasync(&self) -> io::Result<()> {
        let class = self.class_for(IoKind::Sync);
        ioqueue::submit(class, IoKind::Sync, 0, self.file.fdatasync())
            .await
            .map_err(Into::into)
    }

    /// Reserves blocks for the file up to `size` bytes (`fallocate`),
    /// growing its length. The blocks read as zeroes, but are still
    /// "unwritten" to the filesystem: writing them later costs a metadata
    /// update on the next sync, which writing zeroes ahead avoids.
    pub async fn pre_allocate(&self, size: u64) -> io::Result<()> {
        self.file
            .pre_allocate(size, false)
            .await
            .map_err(Into::into)
    }

    /// The file's length in bytes.
    pub async fn file_size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(Into::into)
    }

    /// Sets the file's length.
    pub async fn truncate(&self, size: u64) -> io::Result<()> {
        self.file.truncate(size).await.map_err(Into::into)
    }

    /// Closes the file.
    pub async fn close(self) -> io::Result<()> {
        self.file.close().await.map_err(Into::into)
    }
}

/// Creates `dir` and its parents if missing.
pub async fn create_dir_all(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    crate::spawn_blocking(move || std::fs::create_dir_all(dir)).await
}

/// Makes the directory's entries (creations, renames, removals) durable.
pub async fn sync_directory(dir: &Path) -> io::Result<()> {
    // glommio opens a directory relative to no directory at all (dirfd -1),
    // so a relative path fails with EBADF; its file opens do resolve them.
    let dir = std::path::absolute(dir)?;
    let directory = glommio::io::Directory::open(&dir).await?;
    let synced = directory.sync().await;
    directory.close().await?;
    synced.map_err(Into::into)
}

/// Renames `from` to `to` (same filesystem).
pub async fn rename(from: &Path, to: &Path) -> io::Result<()> {
    glommio::io::rename(from, to).await.map_err(Into::into)
}

/// Removes the file at `path`.
pub async fn remove_file(path: &Path) -> io::Result<()> {
    glommio::io::remove(path).await.map_err(Into::into)
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's file name (lossy UTF-8).
    pub name: String,
    /// Its full path.
    pub path: PathBuf,
    /// Its length in bytes (0 for a non-file).
    pub len_bytes: u64,
    /// Whether it is a regular file.
    pub is_file: bool,
    /// Its hard links: above 1 when a snapshot or backup links the file
    /// too (so cutting it short would damage that copy as well).
    pub links: u64,
}

/// Lists `dir`'s entries, sorted by name.
pub async fn list_directory(dir: &Path) -> io::Result<Vec<DirEntry>> {
    let dir = dir.to_path_buf();
    crate::spawn_blocking(move || {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let metadata = entry.metadata()?;
            entries.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                path: entry.path(),
                len_bytes: metadata.len(),
                is_file: metadata.is_file(),
                links: std::os::unix::fs::MetadataExt::nlink(&metadata),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    })
    .await
}

/// Readies `dir`'s device for direct IO in this thread: DMA-opens (and
/// reads) a non-empty probe file there before anything else is opened, so
/// glommio's first-open device probe sees data instead of an empty file.
/// Call it once per shard and directory, before any other DMA open.
/// Returns the direct-IO alignment of files in `dir`.
pub async fn prepare_device(dir: &Path) -> io::Result<u64> {
    let probe = dir.join(PROBE_FILE_NAME);
    let probe_for_write = probe.clone();
    crate::spawn_blocking(move || write_probe_file(&probe_for_write)).await?;
    let file = DmaFile::open(&probe).await?;
    let alignment = file.alignment();
    let read = file.read_at(0, PROBE_FILE_BYTES).await;
    file.close().await?;
    read.map(|_| alignment)
}

/// Writes the probe file with buffered IO unless it already has its size.
fn write_probe_file(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.len() >= PROBE_FILE_BYTES as u64 => Ok(()),
        _ => std::fs::write(path, [0x5a_u8; PROBE_FILE_BYTES]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{run_shards, ShardSetConfig};

    fn test_dir(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/scheduler-io-tests")
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn write_read_sync_rename_remove() {
        let dir = test_dir("round_trip");
        let results = run_shards(ShardSetConfig::new(1), move |_| {
            let dir = dir.clone();
            async move {
                create_dir_all(&dir).await.expect("create dir");
                prepare_device(&dir).await.expect("probe");
                let path = dir.join("a");
                let file = DmaFile::open_or_create(&path).await.expect("open");
                let align = file.alignment() as usize;
                file.pre_allocate(4 * align as u64)
                    .await
                    .expect("preallocate");
                assert_eq!(file.file_size().await.expect("size"), 4 * align as u64);
                let mut buffer = file.alloc_buffer(align);
                buffer.as_bytes_mut()[..3].copy_from_slice(b"abc");
                file.write_at(buffer, align as u64).await.expect("write");
                file.fdatasync().await.expect("sync");
                let read = file.read_at(0, 2 * align).await.expect("read");
                assert_eq!(&read[align..align + 3], b"abc");
                assert!(read[..align].iter().all(|b| *b == 0));
                file.close().await.expect("close");
                let moved = dir.join("b");
                rename(&path, &moved).await.expect("rename");
                sync_directory(&dir).await.expect("dir sync");
                let names: Vec<String> = list_directory(&dir)
                    .await
                    .expect("list")
                    .into_iter()
                    .map(|entry| entry.name)
                    .collect();
                assert_eq!(names, vec![PROBE_FILE_NAME.to_string(), "b".to_string()]);
                remove_file(&moved).await.expect("remove");
                true
            }
        })
        .expect("shard runs");
        assert_eq!(results, vec![true]);
    }

    #[test]
    fn write_through_files_are_opened_o_dsync_and_plain_ones_not() {
        use std::os::fd::AsRawFd;
        let dir = test_dir("write_through");
        let results = run_shards(ShardSetConfig::new(1), move |_| {
            let dir = dir.clone();
            async move {
                create_dir_all(&dir).await.expect("create dir");
                let path = dir.join("log");
                let created = DmaFile::open_or_create(&path).await.expect("create");
                created.close().await.expect("close");
                let mut dsync = Vec::new();
                for write_through in [false, true] {
                    let file = if write_through {
                        DmaFile::open_write_through(&path).await
                    } else {
                        DmaFile::open(&path).await
                    }
                    .expect("open");
                    // SAFETY: F_GETFL on a descriptor the open file owns.
                    let flags = unsafe { libc::fcntl(file.file.as_raw_fd(), libc::F_GETFL) };
                    assert!(flags >= 0, "fcntl failed");
                    dsync.push(flags & libc::O_DSYNC == libc::O_DSYNC);
                    file.close().await.expect("close");
                }
                dsync
            }
        })
        .expect("shard runs");
        assert_eq!(results, vec![vec![false, true]]);
    }

    #[test]
    fn relative_directories_sync() {
        let dir = test_dir("relative");
        let results = run_shards(ShardSetConfig::new(1), move |_| {
            let dir = dir.clone();
            async move {
                create_dir_all(&dir).await.expect("create dir");
                // Tests run in the crate's directory.
                let relative = Path::new("../target/scheduler-io-tests/relative");
                sync_directory(relative).await.is_ok()
            }
        })
        .expect("shard runs");
        assert_eq!(results, vec![true]);
    }

    fn class_stats(class: IoClass) -> crate::ioqueue::IoClassStats {
        crate::io_stats()
            .into_iter()
            .find(|stats| stats.class == class)
            .expect("every class has stats")
    }

    #[test]
    fn io_is_accounted_in_the_issuing_groups_class() {
        use crate::groups::{spawn_in, Group};
        let dir = test_dir("classes");
        let results = run_shards(ShardSetConfig::new(1), move |_| {
            let dir = dir.clone();
            async move {
                create_dir_all(&dir).await.expect("create dir");
                prepare_device(&dir).await.expect("probe");
                let path = dir.join("f");
                let file = DmaFile::open_or_create(&path).await.expect("open");
                let align = file.alignment() as usize;
                let before = crate::io_stats();
                let file = spawn_in(Group::Compaction, async move {
                    let buffer = file.alloc_buffer(2 * align);
                    file.write_at(buffer, 0).await.expect("write");
                    file.read_at(0, align).await.expect("read");
                    file
                })
                .await;
                let compaction = class_stats(IoClass::Compaction);
                let ops = compaction.ops - before[IoClass::Compaction.index()].ops;
                let bytes = compaction.bytes - before[IoClass::Compaction.index()].bytes;
                assert_eq!((ops, bytes), (2, 3 * align as u64));
                assert!(compaction.disk_time.count() >= 2 && compaction.queued_time.count() >= 2);
                // A statement reads as a query, writes and syncs as the commitlog.
                let file = spawn_in(Group::Statement, async move {
                    file.read_at(0, align).await.expect("read");
                    file.fdatasync().await.expect("sync");
                    file
                })
                .await;
                let query = class_stats(IoClass::Query);
                assert_eq!(query.ops - before[IoClass::Query.index()].ops, 1);
                let log = class_stats(IoClass::Commitlog);
                assert_eq!(log.ops - before[IoClass::Commitlog.index()].ops, 1);
                // An explicit class beats the group.
                let file = file.with_class(IoClass::Streaming);
                let file = spawn_in(Group::Flush, async move {
                    file.read_at(0, align).await.expect("read");
                    file
                })
                .await;
                assert_eq!(class_stats(IoClass::Streaming).ops, 1);
                assert_eq!(class_stats(IoClass::Flush).ops, 0);
                file.close().await.expect("close");
                crate::io_stats()
                    .iter()
                    .all(|stats| stats.in_flight == 0 && stats.queue_length == 0)
            }
        })
        .expect("shard runs");
        assert_eq!(results, vec![true]);
    }

    #[test]
    fn compaction_backlog_moves_class_and_group_shares() {
        use crate::groups::{group_shares, Group};
        let results = run_shards(ShardSetConfig::new(1), |_| async {
            let low = crate::set_compaction_backlog(0);
            let high = crate::set_compaction_backlog(64 << 30);
            (
                low,
                high,
                class_stats(IoClass::Compaction).shares,
                group_shares(Group::Compaction),
            )
        })
        .expect("shard runs");
        let (low, high, class_shares, cpu_shares) = results[0];
        assert!(low < high, "{low} {high}");
        assert_eq!(class_shares, high);
        assert_eq!(cpu_shares, high as usize);
    }
}
