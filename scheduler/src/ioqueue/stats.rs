//! Per-class IO counters and latency histograms of one shard.
//!
//! Histograms are fixed buckets of nanoseconds (10 µs to 1 s, 1-2.5-5
//! steps), counted per bucket, so that a snapshot copies a few dozen
//! integers and the exporter turns them into Prometheus histograms.
use super::IoClass;

/// Upper bounds of the histogram buckets, nanoseconds; one more bucket
/// counts everything above the last bound.
pub const HISTOGRAM_BOUNDS_NS: [u64; 16] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// A latency histogram: `counts[i]` counts observations at most
/// `HISTOGRAM_BOUNDS_NS[i]` and above the bound before it; the last count
/// is the overflow bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    pub counts: [u64; HISTOGRAM_BOUNDS_NS.len() + 1],
    pub sum_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; HISTOGRAM_BOUNDS_NS.len() + 1],
            sum_ns: 0,
        }
    }
}

impl Histogram {
    /// Counts one observation of `ns` nanoseconds.
    pub fn observe(&mut self, ns: u64) {
        let bucket = HISTOGRAM_BOUNDS_NS.partition_point(|bound| *bound < ns);
        self.counts[bucket] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A snapshot of one class on one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoClassStats {
    pub class: IoClass,
    /// The class's current shares.
    pub shares: u32,
    /// Requests completed.
    pub ops: u64,
    /// Bytes read or written by completed requests.
    pub bytes: u64,
    /// Disk-time cost charged, nanoseconds.
    pub cost_ns: u64,
    /// Requests waiting in the queue now.
    pub queue_length: u64,
    /// Requests dispatched and not yet complete.
    pub in_flight: u64,
    /// Time from submission to dispatch.
    pub queued_time: Histogram,
    /// Time from dispatch to completion.
    pub disk_time: Histogram,
}

impl IoClassStats {
    pub(super) fn new(class: IoClass) -> Self {
        IoClassStats {
            class,
            shares: 0,
            ops: 0,
            bytes: 0,
            cost_ns: 0,
            queue_length: 0,
            in_flight: 0,
            queued_time: Histogram::default(),
            disk_time: Histogram::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let mut histogram = Histogram::default();
        histogram.observe(0);
        histogram.observe(10_000);
        histogram.observe(10_001);
        histogram.observe(5_000_000_000);
        assert_eq!(histogram.counts[0], 2);
        assert_eq!(histogram.counts[1], 1);
        assert_eq!(histogram.counts[HISTOGRAM_BOUNDS_NS.len()], 1);
        assert_eq!(histogram.count(), 4);
        assert_eq!(histogram.sum_ns, 5_000_020_001);
    }
}
