//! Tests of slice reads through the clustering index and of the shard's chunk cache, on
//! the real disk (under `target/`) in a one-shard executor.
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use proptest::prelude::*;

use super::tests::{random_memtable, small_options, write, Rng};
use super::*;
use crate::memtable::Memtable;
use crate::model::query::read_partition;
use crate::model::{
    Cell, ClusteringBound, ClusteringRange, DecoratedKey, Mutation, PartitionRange, Row,
    SliceQuery, Tombstone,
};
use crate::test_support::on_shard;

fn test_dir(name: &str) -> std::path::PathBuf {
    crate::test_support::test_dir("sstable-slice-tests", name)
}

/// A bound point: mostly a prefix of one of `keys` (so ranges land among real rows),
/// otherwise short random bytes.
fn random_point(rng: &mut Rng, keys: &[Bytes]) -> Bytes {
    if keys.is_empty() || rng.below(4) == 0 {
        return rng.bytes(2);
    }
    let key = &keys[rng.below(keys.len() as u64) as usize];
    key.slice(..rng.below(key.len() as u64 + 1) as usize)
}

fn random_bound(rng: &mut Rng, prefix: Bytes) -> ClusteringBound {
    ClusteringBound {
        prefix,
        inclusive: rng.below(2) == 0,
    }
}

/// A random slice: up to three ranges between sorted random points (occasionally open
/// at either end, occasionally the full range), forward or reversed, any row limit.
pub(crate) fn random_slice_among(rng: &mut Rng, keys: &[Bytes]) -> SliceQuery {
    let mut points: Vec<Bytes> = (0..rng.below(7)).map(|_| random_point(rng, keys)).collect();
    points.sort();
    points.dedup();
    let mut ranges: Vec<ClusteringRange> = points
        .chunks(2)
        .map(|pair| {
            let start = Some(random_bound(rng, pair[0].clone()));
            let end = pair.get(1).map(|p| random_bound(rng, p.clone()));
            ClusteringRange::new(start, end)
        })
        .collect();
    if let Some(first) = ranges.first_mut().filter(|_| rng.below(4) == 0) {
        first.start = None;
    }
    if ranges.is_empty() || rng.below(8) == 0 {
        ranges = vec![ClusteringRange::full()];
    }
    SliceQuery {
        ranges,
        reversed: rng.below(2) == 0,
        row_limit: [usize::MAX, 1, 3][rng.below(3) as usize],
        columns: None,
    }
}

pub(crate) fn random_slice(rng: &mut Rng) -> SliceQuery {
    random_slice_among(rng, &[])
}

/// A partition of `rows` rows with random clustering keys, some cells and a few range
/// tombstones: large enough to span many row blocks.
fn huge_mutation(rng: &mut Rng, key: DecoratedKey, rows: usize) -> Mutation {
    let mut m = Mutation::new(uuid::Uuid::nil(), key);
    for _ in 0..rows {
        let clustering = rng.bytes(6);
        let ts = rng.below(1_000) as i64;
        let row = Row::with_marker(ts, None).cell(1, Cell::live(ts, rng.bytes(40)));
        m.rows.push((clustering, row));
    }
    for _ in 0..3 {
        let range = ClusteringRange::new(
            Some(ClusteringBound::inclusive(rng.bytes(2))),
            Some(ClusteringBound::exclusive(rng.bytes(2))),
        );
        let t = Tombstone::new(rng.below(1_000) as i64, 10);
        m = m.with_range_tombstone(range, t);
    }
    m
}

fn slice_property(seed: u64, huge_rows: usize, row_block_size: usize, chunk_size: usize) {
    let dir = test_dir(&format!("prop-{seed:x}-{huge_rows}-{row_block_size}"));
    on_shard(move || async move {
        let mut rng = Rng(seed | 1);
        let mut memtable = random_memtable(seed, 300, 60);
        for k in 0..2u8 {
            let key = DecoratedKey::new(i64::from(k) * 1000 - 3, vec![0xEE, k]);
            memtable.apply(&huge_mutation(&mut rng, key, huge_rows));
        }
        let options = SstableOptions {
            row_block_size,
            chunk_size,
            ..small_options()
        };
        write(&dir, 1, &memtable, options).await;
        let sstable = Sstable::open(&dir, 1).await.expect("open");
        for (key, whole) in memtable.iter() {
            let keys: Vec<Bytes> = whole.rows.keys().cloned().collect();
            for _ in 0..8 {
                let slice = random_slice_among(&mut rng, &keys);
                let sliced = sstable
                    .read_partition_slice(key, &slice)
                    .await
                    .expect("slice read")
                    .expect("partition present");
                assert!(sliced.rows.keys().all(|c| keys.contains(c)));
                for now in [0, 50, 1 << 30] {
                    assert_eq!(
                        read_partition(&[&sliced], key, &slice, now),
                        read_partition(&[whole], key, &slice, now),
                        "{key:?} {slice:?} at {now}"
                    );
                }
            }
            let full = sstable
                .read_partition_slice(key, &SliceQuery::full())
                .await
                .expect("full slice")
                .expect("present");
            assert_eq!(full.rows, whole.rows);
            assert_eq!(full.static_row, whole.static_row);
        }
        let absent = DecoratedKey::new(4, vec![9, 9, 9]);
        let slice = SliceQuery::full();
        assert_eq!(
            sstable
                .read_partition_slice(&absent, &slice)
                .await
                .expect("read"),
            None
        );
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// For random partitions (two of them spanning many row blocks) and random slices,
    /// reading a slice and then the partition's live data gives exactly what reading the
    /// whole partition gives.
    #[test]
    fn a_slice_reads_like_the_whole_partition(
        seed in any::<u64>(),
        huge_rows in 0usize..3000,
        row_block_size in 32usize..4096,
        chunk_size in 256usize..8192,
    ) {
        slice_property(seed, huge_rows, row_block_size, chunk_size);
    }
}

/// One partition of 5000 rows (~130 bytes each, incompressible) among small neighbours.
fn huge_partition_memtable() -> (Memtable, DecoratedKey, Vec<Bytes>) {
    let mut rng = Rng(77);
    let mut memtable = random_memtable(78, 50, 20);
    let key = DecoratedKey::new(1, b"huge".to_vec());
    let mut m = Mutation::new(uuid::Uuid::nil(), key.clone());
    let mut keys = Vec::new();
    for i in 0..5000u32 {
        let clustering = Bytes::from(i.to_be_bytes().to_vec());
        let value: Vec<u8> = (0..100).map(|_| rng.next() as u8).collect();
        m.rows.push((
            clustering.clone(),
            Row::with_marker(1, None).cell(1, Cell::live(1, value)),
        ));
        keys.push(clustering);
    }
    memtable.apply(&m);
    (memtable, key, keys)
}

fn chunk_count_options() -> SstableOptions {
    SstableOptions {
        chunk_size: 4096,
        row_block_size: 4096,
        ..SstableOptions::default()
    }
}

/// Chunks read from disk by `read` on a freshly opened SSTable with its own cache.
async fn chunks_read_by(dir: &Path, key: &DecoratedKey, slice: &SliceQuery) -> (u64, usize) {
    let sstable = Sstable::open_with_cache(dir, 1, ChunkCache::new(1 << 30))
        .await
        .expect("open");
    let partition = sstable
        .read_partition_slice(key, slice)
        .await
        .expect("slice")
        .expect("present");
    (sstable.data_chunks_read(), partition.rows.len())
}

#[test]
fn a_narrow_slice_of_a_huge_partition_reads_a_few_chunks() {
    let dir = test_dir("chunk_count");
    on_shard(move || async move {
        let (memtable, key, keys) = huge_partition_memtable();
        write(&dir, 1, &memtable, chunk_count_options()).await;
        let (whole, rows) = chunks_read_by(&dir, &key, &SliceQuery::full()).await;
        assert_eq!(rows, 5000);
        assert!(whole > 120, "the whole partition spans {whole} chunks");
        let one_row = |i: usize| ClusteringRange::prefix(keys[i].clone());
        let narrow = [
            vec![one_row(2500)],
            vec![one_row(0)],
            vec![one_row(4999)],
            vec![ClusteringRange::new(
                Some(ClusteringBound::inclusive(keys[1000].clone())),
                Some(ClusteringBound::exclusive(keys[1010].clone())),
            )],
        ];
        for ranges in narrow {
            for reversed in [false, true] {
                let slice = SliceQuery {
                    ranges: ranges.clone(),
                    reversed,
                    ..SliceQuery::full()
                };
                let (chunks, rows) = chunks_read_by(&dir, &key, &slice).await;
                assert!(rows >= 1);
                // Header (1), clustering index (~125 entries of 28 bytes: 1-2), one or
                // two row blocks (1-3): a constant, whatever the partition's size.
                assert!(chunks <= 7, "{chunks} chunks for {ranges:?}");
            }
        }
        let two_far_apart = SliceQuery {
            ranges: vec![one_row(10), one_row(4990)],
            ..SliceQuery::full()
        };
        let (chunks, rows) = chunks_read_by(&dir, &key, &two_far_apart).await;
        assert_eq!(rows, 2);
        assert!(chunks <= 10, "{chunks} chunks for two rows");
    });
}

#[test]
fn a_repeated_read_hits_the_cache() {
    let dir = test_dir("cache_hits");
    on_shard(move || async move {
        let (memtable, key, _) = huge_partition_memtable();
        write(&dir, 1, &memtable, chunk_count_options()).await;
        let cache = ChunkCache::new(1 << 30);
        let sstable = Sstable::open_with_cache(&dir, 1, Rc::clone(&cache))
            .await
            .expect("open");
        let first = sstable.read_partition(&key).await.expect("read");
        let after_first = cache.stats();
        let from_disk = sstable.data_chunks_read() + sstable.index_blocks_read();
        assert!(after_first.misses > 100 && after_first.entries == from_disk);
        let second = sstable.read_partition(&key).await.expect("read again");
        assert_eq!(first, second);
        let after_second = cache.stats();
        assert_eq!(
            sstable.data_chunks_read() + sstable.index_blocks_read(),
            from_disk,
            "nothing read from disk"
        );
        assert_eq!(after_second.misses, after_first.misses);
        assert!(after_second.hits >= after_first.hits + from_disk);
        // Closing the SSTable drops its chunks; the next cache calls free them.
        sstable.close().await.expect("close");
        assert_eq!(cache.stats().entries, 0);
        let unknown = super::cache::ChunkId {
            sstable: u64::MAX,
            chunk: 0,
        };
        for _ in 0..from_disk {
            cache.get(unknown);
        }
        assert_eq!(cache.stats().held_bytes, 0);
    });
}

#[test]
fn the_cache_stays_within_its_budget_across_sstables() {
    let dir = test_dir("cache_budget");
    on_shard(move || async move {
        let budget = 20_000;
        let cache = ChunkCache::new(budget);
        let mut sstables = Vec::new();
        for generation in 1..=3 {
            let memtable = random_memtable(generation, 1500, 300);
            write(&dir, generation, &memtable, small_options()).await;
            let sstable = Sstable::open_with_cache(&dir, generation, Rc::clone(&cache))
                .await
                .expect("open");
            sstables.push(sstable);
        }
        for sstable in &sstables {
            let scan = sstable.scan(&PartitionRange::full()).await.expect("scan");
            assert!(!scan.is_empty());
            assert!(cache.stats().held_bytes <= budget as u64);
        }
        let stats = cache.stats();
        assert!(stats.evictions > 0, "{stats:?}");
        assert!(stats.held_bytes > budget as u64 / 2, "{stats:?}");
    });
}

#[test]
fn a_corrupted_chunk_is_never_cached() {
    let dir = test_dir("cache_corrupt");
    on_shard(move || async move {
        let memtable = random_memtable(5, 1500, 300);
        write(&dir, 1, &memtable, small_options()).await;
        let path = Component::Data.path(&dir, 1);
        let mut data = std::fs::read(&path).expect("read data");
        let middle = data.len() / 2;
        data[middle] ^= 0x10;
        std::fs::write(&path, &data).expect("damage");
        let cache = ChunkCache::new(1 << 30);
        let sstable = Sstable::open_with_cache(&dir, 1, Rc::clone(&cache))
            .await
            .expect("open");
        let full = PartitionRange::full();
        sstable.scan(&full).await.expect_err("damage noticed");
        let after_first = cache.stats();
        assert_eq!(
            after_first.entries,
            sstable.data_chunks_read() + sstable.index_blocks_read()
        );
        sstable.scan(&full).await.expect_err("damage noticed again");
        let after_second = cache.stats();
        // The intact chunks came from the cache; the damaged one was read again.
        assert_eq!(after_second.misses, after_first.misses + 1);
        assert_eq!(after_second.entries, after_first.entries);
    });
}

/// The `Index.db` entry of `key`, read straight from the files.
fn index_entry_of(dir: &Path, key: &DecoratedKey) -> format::IndexEntry {
    let summary = std::fs::read(Component::Summary.path(dir, 1)).expect("summary");
    let index = std::fs::read(Component::Index.path(dir, 1)).expect("index");
    format::decode_summary(&summary)
        .expect("summary decodes")
        .iter()
        .flat_map(|block| {
            let bytes = &index[block.offset as usize..][..block.len as usize];
            format::decode_index_block(block.offset, bytes).expect("index block decodes")
        })
        .find(|e| e.key == *key)
        .expect("key indexed")
}

#[test]
fn a_bit_flip_in_the_clustering_index_fails_the_slice_read() {
    let dir = test_dir("flip_clustering_index");
    on_shard(move || async move {
        let (memtable, key, keys) = huge_partition_memtable();
        write(&dir, 1, &memtable, chunk_count_options()).await;
        let entry = index_entry_of(&dir, &key);
        assert!(entry.clustering_index > entry.position, "{entry:?}");
        let info = std::fs::read(Component::CompressionInfo.path(&dir, 1)).expect("info");
        let info = format::CompressionInfo::decode(&info).expect("chunk table");
        let chunk = (entry.clustering_index / info.chunk_size) as usize;
        let (start, end) = (info.offsets[chunk], info.offsets[chunk + 1]);
        let slice = SliceQuery {
            ranges: vec![ClusteringRange::prefix(keys[2500].clone())],
            ..SliceQuery::full()
        };
        let path = Component::Data.path(&dir, 1);
        let original = std::fs::read(&path).expect("data");
        let mut rng = Rng(3);
        for _ in 0..16 {
            let at = (start + rng.below(end - start)) as usize;
            let mut damaged = original.clone();
            damaged[at] ^= 1 << rng.below(8);
            std::fs::write(&path, &damaged).expect("damage");
            let sstable = Sstable::open(&dir, 1).await.expect("open");
            let read = sstable.read_partition_slice(&key, &slice).await;
            assert!(read.is_err(), "flip at {at} went unnoticed");
        }
        std::fs::write(&path, &original).expect("restore");
        let sstable = Sstable::open(&dir, 1).await.expect("open");
        let read = sstable.read_partition_slice(&key, &slice).await;
        assert_eq!(read.expect("intact").expect("present").rows.len(), 1);
    });
}

#[test]
fn point_reads_of_a_hot_key_read_no_index_block_again() {
    let dir = test_dir("cache_index");
    on_shard(move || async move {
        let memtable = random_memtable(6, 400, 50);
        write(&dir, 1, &memtable, small_options()).await;
        let cache = ChunkCache::new(1 << 30);
        let sstable = Sstable::open_with_cache(&dir, 1, Rc::clone(&cache))
            .await
            .expect("open");
        let (key, expected) = memtable.iter().nth(7).expect("a partition");
        let full = SliceQuery::full();
        let first = sstable
            .read_partition_slice(key, &full)
            .await
            .expect("read");
        assert_eq!(first.as_ref(), Some(expected));
        let index_reads = sstable.index_blocks_read();
        assert!(index_reads > 0);
        for _ in 0..3 {
            let again = sstable
                .read_partition_slice(key, &full)
                .await
                .expect("read");
            assert_eq!(again.as_ref(), Some(expected));
        }
        assert_eq!(
            sstable.index_blocks_read(),
            index_reads,
            "served from the cache"
        );
    });
}
