//! The shard's cache of decompressed `Data.db` chunks, shared by every SSTable the shard
//! has open.
//!
//! Why chunks and not partitions or rows: a chunk is the unit the reader verifies and
//! decompresses, so caching it saves exactly the disk read, the CRC and the lz4 work, and
//! every random-access read path (point reads, slices, scans) shares it without knowing
//! the partition layout. Compaction does not use it: it reads each chunk of its inputs
//! once, front to back (`sstable::scan`), and would only evict what reads need. SSTables are immutable, so an entry never goes stale: it is keyed by
//! the SSTable's cache id (unique on the shard, never reused) and the chunk index, and is
//! dropped when the SSTable is dropped (its memory freed a few chunks per later cache
//! call, not all at once) or by eviction.
//!
//! Eviction is least-recently-used under a byte budget (the sum of the cached chunks'
//! decompressed lengths). Only chunks that passed their CRC and decompressed to their
//! expected length are ever inserted, so corruption is never served from here.
//!
//! One cache per shard ([`ChunkCache::shard`], a thread-local: a shard is one thread and
//! nothing here is `Send`); tests and tools may build private ones with
//! [`ChunkCache::new`].
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// Default byte budget of a shard's chunk cache.
pub const DEFAULT_CHUNK_CACHE_BYTES: usize = 64 * 1024 * 1024;

thread_local! {
    static SHARD_CACHE: Rc<ChunkCache> = ChunkCache::new(DEFAULT_CHUNK_CACHE_BYTES);
}

/// A counters snapshot, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkCacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that had to read the chunk from disk.
    pub misses: u64,
    /// Chunks inserted.
    pub inserts: u64,
    /// Chunks evicted to stay within the budget (dropped SSTables' chunks not counted).
    pub evictions: u64,
    /// Decompressed bytes held now.
    pub held_bytes: u64,
    /// Chunks held now.
    pub entries: u64,
    /// The byte budget.
    pub capacity_bytes: u64,
}

/// Which chunk: an SSTable's cache id and the chunk's index in its `Data.db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ChunkId {
    pub sstable: u64,
    pub chunk: u64,
}

struct Entry {
    bytes: Rc<[u8]>,
    last_used: u64,
}

/// Chunks of a forgotten SSTable freed per cache lookup or insert.
const RELEASED_FREED_PER_CALL: usize = 8;

#[derive(Default)]
struct Inner {
    capacity_bytes: usize,
    entries: BTreeMap<ChunkId, Entry>,
    /// Chunks of forgotten SSTables not freed yet: freeing a whole SSTable's
    /// chunks at once (64 MiB, thousands of buffers handed back to the OS)
    /// held the shard for ~10 ms at the end of a compaction, so they go a
    /// few per cache call (and first when room is needed). Counted in
    /// `held_bytes` until freed.
    released: Vec<Rc<[u8]>>,
    /// `last_used` tick → chunk; the first entry is the least recently used.
    recency: BTreeMap<u64, ChunkId>,
    tick: u64,
    stats: ChunkCacheStats,
}

/// A memory-bounded LRU cache of decompressed data chunks (see the module docs).
pub struct ChunkCache {
    inner: RefCell<Inner>,
    next_sstable_id: Cell<u64>,
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ChunkCache {
    /// A private cache holding at most `capacity_bytes` of decompressed chunks.
    pub fn new(capacity_bytes: usize) -> Rc<ChunkCache> {
        Rc::new(ChunkCache {
            inner: RefCell::new(Inner {
                capacity_bytes,
                ..Inner::default()
            }),
            next_sstable_id: Cell::new(0),
        })
    }

    /// This shard's cache (created with [`DEFAULT_CHUNK_CACHE_BYTES`] on first use);
    /// `Sstable::open` uses it.
    pub fn shard() -> Rc<ChunkCache> {
        SHARD_CACHE.with(Rc::clone)
    }

    /// Changes the budget, evicting least recently used chunks down to it.
    pub fn set_capacity_bytes(&self, capacity_bytes: usize) {
        let mut inner = self.inner.borrow_mut();
        inner.capacity_bytes = capacity_bytes;
        inner.evict_to(capacity_bytes);
    }

    /// The counters now.
    pub fn stats(&self) -> ChunkCacheStats {
        let inner = self.inner.borrow();
        ChunkCacheStats {
            entries: inner.entries.len() as u64,
            capacity_bytes: inner.capacity_bytes as u64,
            ..inner.stats
        }
    }

    /// A fresh id for an SSTable being opened (never reused by this cache).
    pub(crate) fn register_sstable(&self) -> u64 {
        let id = self.next_sstable_id.get();
        self.next_sstable_id.set(id + 1);
        id
    }

    /// The cached chunk, counting a hit or a miss.
    pub(crate) fn get(&self, id: ChunkId) -> Option<Rc<[u8]>> {
        let mut inner = self.inner.borrow_mut();
        inner.free_released(RELEASED_FREED_PER_CALL);
        inner.tick += 1;
        let tick = inner.tick;
        let Some(entry) = inner.entries.get_mut(&id) else {
            inner.stats.misses += 1;
            return None;
        };
        let previous = std::mem::replace(&mut entry.last_used, tick);
        let bytes = Rc::clone(&entry.bytes);
        inner.recency.remove(&previous);
        inner.recency.insert(tick, id);
        inner.stats.hits += 1;
        Some(bytes)
    }

    /// Caches a verified, decompressed chunk; one larger than the whole budget is not kept.
    pub(crate) fn insert(&self, id: ChunkId, bytes: Rc<[u8]>) {
        let mut inner = self.inner.borrow_mut();
        inner.free_released(RELEASED_FREED_PER_CALL);
        let len = bytes.len();
        if len > inner.capacity_bytes {
            return;
        }
        inner.remove(id);
        let capacity = inner.capacity_bytes;
        inner.evict_to(capacity - len);
        inner.tick += 1;
        let tick = inner.tick;
        inner.entries.insert(
            id,
            Entry {
                bytes,
                last_used: tick,
            },
        );
        inner.recency.insert(tick, id);
        inner.stats.held_bytes += len as u64;
        inner.stats.inserts += 1;
    }

    /// Drops every chunk of an SSTable (it is being closed or dropped): no
    /// lookup finds them any more; their memory is freed over the next
    /// cache calls.
    pub(crate) fn forget_sstable(&self, sstable: u64) {
        let mut inner = self.inner.borrow_mut();
        let first = ChunkId { sstable, chunk: 0 };
        let ids: Vec<ChunkId> = inner
            .entries
            .range(first..)
            .take_while(|(id, _)| id.sstable == sstable)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(bytes) = inner.unlink(id) {
                inner.released.push(bytes);
            }
        }
    }
}

impl Inner {
    /// Takes `id` out of the index and the recency order; its bytes stay
    /// counted in `held_bytes` until the caller frees them.
    fn unlink(&mut self, id: ChunkId) -> Option<Rc<[u8]>> {
        let entry = self.entries.remove(&id)?;
        self.recency.remove(&entry.last_used);
        Some(entry.bytes)
    }

    fn remove(&mut self, id: ChunkId) -> bool {
        let Some(bytes) = self.unlink(id) else {
            return false;
        };
        self.stats.held_bytes -= bytes.len() as u64;
        true
    }

    /// Frees up to `count` chunks of forgotten SSTables.
    fn free_released(&mut self, count: usize) {
        for _ in 0..count {
            let Some(bytes) = self.released.pop() else {
                return;
            };
            self.stats.held_bytes -= bytes.len() as u64;
        }
    }

    fn evict_to(&mut self, budget: usize) {
        while self.stats.held_bytes > budget as u64 && !self.released.is_empty() {
            self.free_released(1);
        }
        while self.stats.held_bytes > budget as u64 {
            let Some((_, id)) = self.recency.pop_first() else {
                return;
            };
            if let Some(entry) = self.entries.remove(&id) {
                self.stats.held_bytes -= entry.bytes.len() as u64;
                self.stats.evictions += 1;
            }
        }
    }
}

/// An SSTable's membership in a cache: dropping it drops the SSTable's chunks (no
/// lookup finds them; their memory, still counted in the budget, is freed over the
/// next cache calls), so a deleted SSTable's chunks never outlast its reader for long.
pub(crate) struct CacheHandle {
    pub cache: Rc<ChunkCache>,
    pub sstable: u64,
}

impl CacheHandle {
    pub(crate) fn new(cache: Rc<ChunkCache>) -> CacheHandle {
        let sstable = cache.register_sstable();
        CacheHandle { cache, sstable }
    }

    pub(crate) fn id(&self, chunk: u64) -> ChunkId {
        ChunkId {
            sstable: self.sstable,
            chunk,
        }
    }
}

impl Drop for CacheHandle {
    fn drop(&mut self) {
        self.cache.forget_sstable(self.sstable);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(len: usize, fill: u8) -> Rc<[u8]> {
        vec![fill; len].into()
    }

    fn id(sstable: u64, chunk: u64) -> ChunkId {
        ChunkId { sstable, chunk }
    }

    #[test]
    fn eviction_keeps_held_bytes_within_the_budget_and_drops_the_least_recent() {
        let cache = ChunkCache::new(10_000);
        for i in 0..5 {
            cache.insert(id(1, i), chunk(3_000, i as u8));
            assert!(cache.stats().held_bytes <= 10_000);
        }
        // Three fit; 0 and 1 were evicted in insertion order.
        assert_eq!(cache.stats().entries, 3);
        assert_eq!(cache.stats().evictions, 2);
        assert!(cache.get(id(1, 0)).is_none());
        // Touch 2 so that 3 is now the least recent, then insert another.
        assert!(cache.get(id(1, 2)).is_some());
        cache.insert(id(1, 9), chunk(3_000, 9));
        assert!(cache.get(id(1, 3)).is_none());
        assert!(cache.get(id(1, 2)).is_some());
        assert_eq!(cache.stats().held_bytes, 9_000);
    }

    #[test]
    fn hits_and_misses_are_counted() {
        let cache = ChunkCache::new(1 << 20);
        assert!(cache.get(id(0, 0)).is_none());
        cache.insert(id(0, 0), chunk(100, 7));
        assert_eq!(cache.get(id(0, 0)).as_deref(), Some(&[7u8; 100][..]));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 1));
    }

    #[test]
    fn a_chunk_larger_than_the_budget_is_not_kept() {
        let cache = ChunkCache::new(100);
        cache.insert(id(0, 0), chunk(101, 1));
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn shrinking_the_budget_evicts_and_dropping_a_handle_forgets_its_chunks() {
        let cache = ChunkCache::new(1 << 20);
        let first = CacheHandle::new(Rc::clone(&cache));
        let second = CacheHandle::new(Rc::clone(&cache));
        assert_ne!(first.sstable, second.sstable);
        for i in 0..4 {
            cache.insert(first.id(i), chunk(1_000, 1));
            cache.insert(second.id(i), chunk(1_000, 2));
        }
        drop(first);
        assert_eq!(cache.stats().entries, 4);
        // The forgotten chunks are held until a cache call frees them.
        assert_eq!(cache.stats().held_bytes, 8_000);
        assert!(cache.get(second.id(0)).is_some());
        assert_eq!(cache.stats().held_bytes, 4_000);
        cache.set_capacity_bytes(2_500);
        assert_eq!(cache.stats().entries, 2);
        assert!(cache.get(second.id(3)).is_some());
    }

    /// A forgotten SSTable's chunks are freed a few per call, and before
    /// any live chunk is evicted for room.
    #[test]
    fn forgotten_chunks_are_freed_gradually_and_first() {
        let cache = ChunkCache::new(100 * 1_000);
        let old = CacheHandle::new(Rc::clone(&cache));
        let live = CacheHandle::new(Rc::clone(&cache));
        for i in 0..90 {
            cache.insert(old.id(i), chunk(1_000, 1));
        }
        for i in 0..10 {
            cache.insert(live.id(i), chunk(1_000, 2));
        }
        drop(old);
        assert_eq!(cache.stats().held_bytes, 100_000);
        assert!(cache.get(live.id(0)).is_some());
        let freed_one_call = 100_000 - cache.stats().held_bytes;
        assert_eq!(freed_one_call, (RELEASED_FREED_PER_CALL * 1_000) as u64);
        // A full cache makes room from the forgotten chunks, not the live ones.
        cache.insert(live.id(10), chunk(1_000, 2));
        assert_eq!(cache.stats().entries, 11);
        assert_eq!(cache.stats().evictions, 0);
        for _ in 0..20 {
            cache.get(live.id(1));
        }
        assert_eq!(
            cache.stats().held_bytes,
            11_000,
            "all forgotten chunks freed"
        );
    }
}
