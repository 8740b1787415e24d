//! The disk's capacity, shared by every shard without a lock: a token
//! bucket whose tokens are nanoseconds of disk time.
//!
//! Why a shared bucket and not a static 1/N split: with a static split an
//! idle shard's share of the disk is wasted while a busy shard queues. The
//! shared bucket lets any shard use what the others leave.
//!
//! How it works (two monotonic counters, "rovers"):
//! 1. `tail` counts every token ever taken. A shard takes `n` tokens with
//!    one `fetch_add`; the value it gets back plus `n` is its position.
//! 2. `head` counts every token ever made available. The disk produces one
//!    token per nanosecond of wall time (a cost is the disk time a request
//!    occupies), so replenishing adds the nanoseconds since the last
//!    replenish. One shard wins the compare-and-swap on the timestamp and
//!    adds them; the others see the new head.
//! 3. A position is ready when `head >= position`; until then the shard
//!    waits `position - head` nanoseconds, which is exact because tokens
//!    arrive at one per nanosecond. Positions are served in the order they
//!    were taken, so no shard starves another.
//! 4. `head` never runs more than `burst` ahead of `tail`: an idle disk does
//!    not bank capacity for a later flood of requests.
use std::sync::atomic::{AtomicU64, Ordering};

/// The shared disk-time token bucket.
#[derive(Debug)]
pub struct TokenBucket {
    head: AtomicU64,
    tail: AtomicU64,
    last_replenish_ns: AtomicU64,
    burst: u64,
}

impl TokenBucket {
    /// A full bucket holding at most `burst` tokens (nanoseconds of disk time).
    pub fn new(burst: u64) -> Self {
        TokenBucket {
            head: AtomicU64::new(burst),
            tail: AtomicU64::new(0),
            last_replenish_ns: AtomicU64::new(0),
            burst,
        }
    }

    /// The most tokens the bucket holds while nobody takes any.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Takes `tokens`; returns the position at which they are ready.
    pub fn grab(&self, tokens: u64) -> u64 {
        self.tail.fetch_add(tokens, Ordering::AcqRel) + tokens
    }

    /// Tokens still missing before `position` is ready (0 when ready).
    pub fn deficiency(&self, position: u64) -> u64 {
        position.saturating_sub(self.head.load(Ordering::Acquire))
    }

    /// Adds the tokens produced since the last replenish, `now_ns` being
    /// nanoseconds since a fixed epoch every caller shares.
    pub fn replenish(&self, now_ns: u64) {
        let last = self.last_replenish_ns.load(Ordering::Acquire);
        if now_ns <= last {
            return;
        }
        if self
            .last_replenish_ns
            .compare_exchange(last, now_ns, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another shard replenished for (at least) this interval.
            return;
        }
        let produced = now_ns - last;
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let tail = self.tail.load(Ordering::Acquire);
            let limit = tail.saturating_add(self.burst).max(head);
            let target = head.saturating_add(produced).min(limit);
            if target == head {
                return;
            }
            match self
                .head
                .compare_exchange_weak(head, target, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => head = actual,
            }
        }
    }

    /// Tokens available right now (for tests and stats).
    pub fn available(&self) -> u64 {
        self.head
            .load(Ordering::Acquire)
            .saturating_sub(self.tail.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn grabs_wait_for_replenishment() {
        let bucket = TokenBucket::new(1000);
        let first = bucket.grab(600);
        assert_eq!(bucket.deficiency(first), 0);
        let second = bucket.grab(600);
        assert_eq!(bucket.deficiency(second), 200);
        bucket.replenish(150);
        assert_eq!(bucket.deficiency(second), 50);
        bucket.replenish(200);
        assert_eq!(bucket.deficiency(second), 0);
    }

    #[test]
    fn an_idle_bucket_holds_at_most_its_burst() {
        let bucket = TokenBucket::new(1000);
        bucket.replenish(1_000_000_000);
        assert_eq!(bucket.available(), 1000);
        let position = bucket.grab(3000);
        assert_eq!(bucket.deficiency(position), 2000);
        bucket.replenish(1_000_000_500);
        assert_eq!(bucket.deficiency(position), 1500);
    }

    #[test]
    fn stale_or_repeated_times_add_nothing() {
        let bucket = TokenBucket::new(100);
        let position = bucket.grab(300);
        bucket.replenish(50);
        bucket.replenish(50);
        bucket.replenish(10);
        assert_eq!(bucket.deficiency(position), 150);
    }

    #[test]
    fn threads_taking_tokens_never_exceed_the_rate() {
        // Four threads take 10-token grabs; the clock is advanced by the
        // test only, so the total granted is exactly bounded.
        let bucket = Arc::new(TokenBucket::new(100));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let bucket = bucket.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .map(|_| bucket.grab(10))
                        .filter(|position| bucket.deficiency(*position) == 0)
                        .count()
                })
            })
            .collect();
        let ready: usize = handles
            .into_iter()
            .map(|handle| handle.join().expect("thread"))
            .sum();
        // No time passed: only the initial burst is ready.
        assert!(ready <= 10, "{ready} grabs ready from a 100-token burst");
        bucket.replenish(40_000);
        assert_eq!(bucket.deficiency(40_000), 0);
        assert_eq!(bucket.deficiency(40_101), 1);
    }
}
