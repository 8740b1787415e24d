//! Segment files: their names, and creating (zero-filled ahead of use),
//! recycling and removing them. A segment is only ever visible under its
//! final name once it is fully sized, zeroed and carries its header, so a
//! crash while preparing one leaves a `.tmp` file that the next open removes.
use std::io;
use std::path::{Path, PathBuf};

use scheduler::io::{self as fileio, DmaFile, MAX_IO_BYTES};

use super::format::SegmentHeader;

const NAME_PREFIX: &str = "CommitLog-";
const NAME_SUFFIX: &str = ".log";
const TEMP_SUFFIX: &str = ".tmp";

/// What a directory entry's name says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentName {
    /// A segment of `shard`.
    Segment { shard: u32, segment_id: u64 },
    /// A segment of `shard` being prepared when a process stopped.
    Temporary { shard: u32 },
}

/// The file name of segment `segment_id` of `shard`.
pub fn file_name(shard: u32, segment_id: u64) -> String {
    format!("{NAME_PREFIX}{shard}-{segment_id}{NAME_SUFFIX}")
}

pub fn path(dir: &Path, shard: u32, segment_id: u64) -> PathBuf {
    dir.join(file_name(shard, segment_id))
}

fn temp_path(dir: &Path, shard: u32, segment_id: u64) -> PathBuf {
    dir.join(format!("{}{TEMP_SUFFIX}", file_name(shard, segment_id)))
}

/// Parses a file name; `None` for anything that is not ours.
pub fn parse_name(name: &str) -> Option<SegmentName> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (rest, temporary) = match rest.strip_suffix(TEMP_SUFFIX) {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let (shard, id) = rest.strip_suffix(NAME_SUFFIX)?.split_once('-')?;
    let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(shard) || !all_digits(id) {
        return None;
    }
    let shard = shard.parse().ok()?;
    let segment_id = id.parse().ok()?;
    Some(if temporary {
        SegmentName::Temporary { shard }
    } else {
        SegmentName::Segment { shard, segment_id }
    })
}

/// Creates segment `header.segment_id`: a file of `segment_bytes`, every
/// block written (zeroes, the header first) and synced, so that later
/// appends overwrite allocated blocks and their syncs stay cheap.
pub async fn create(dir: &Path, header: SegmentHeader) -> io::Result<()> {
    let temp = temp_path(dir, header.shard, header.segment_id);
    let file = DmaFile::open_or_create(&temp).await?;
    let written = zero_fill(&file, header).await;
    let closed = file.close().await;
    written?;
    closed?;
    fileio::rename(&temp, &path(dir, header.shard, header.segment_id)).await?;
    fileio::sync_directory(dir).await
}

async fn zero_fill(file: &DmaFile, header: SegmentHeader) -> io::Result<()> {
    file.truncate(0).await?;
    file.pre_allocate(header.segment_bytes).await?;
    let mut pos = 0;
    while pos < header.segment_bytes {
        let len = (header.segment_bytes - pos).min(MAX_IO_BYTES as u64) as usize;
        let mut buffer = file.alloc_buffer(len);
        if pos == 0 {
            let block = header.encode();
            buffer.as_bytes_mut()[..block.len()].copy_from_slice(&block);
        }
        file.write_at(buffer, pos).await?;
        pos += len as u64;
    }
    file.fdatasync().await
}

/// Turns discarded segment `old_id` into segment `header.segment_id`: the
/// new header is written and synced before the rename, and the old blocks
/// stay but name the old id, so replay reads them as unwritten.
pub async fn recycle(dir: &Path, old_id: u64, header: SegmentHeader) -> io::Result<()> {
    let old = path(dir, header.shard, old_id);
    let file = DmaFile::open(&old).await?;
    let rewritten = rewrite_header(&file, header).await;
    let closed = file.close().await;
    rewritten?;
    closed?;
    fileio::rename(&old, &path(dir, header.shard, header.segment_id)).await?;
    fileio::sync_directory(dir).await
}

async fn rewrite_header(file: &DmaFile, header: SegmentHeader) -> io::Result<()> {
    let block = header.encode();
    let mut buffer = file.alloc_buffer(block.len());
    buffer.as_bytes_mut().copy_from_slice(&block);
    file.write_at(buffer, 0).await?;
    file.fdatasync().await
}

/// Removes segment `segment_id` for good.
pub async fn remove(dir: &Path, shard: u32, segment_id: u64) -> io::Result<()> {
    fileio::remove_file(&path(dir, shard, segment_id)).await?;
    fileio::sync_directory(dir).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_foreign_names_are_not_ours() {
        assert_eq!(
            parse_name(&file_name(2, 15)),
            Some(SegmentName::Segment {
                shard: 2,
                segment_id: 15
            })
        );
        assert_eq!(
            parse_name("CommitLog-2-15.log.tmp"),
            Some(SegmentName::Temporary { shard: 2 })
        );
        for foreign in [
            "CommitLog-2-15.log.bak",
            "CommitLog--15.log",
            "CommitLog-x-1.log",
            "commitlog-1-1.log",
            "notes.txt",
            ".tessera-dma-probe",
        ] {
            assert_eq!(parse_name(foreign), None, "{foreign}");
        }
    }
}
