//! The IO scheduler's series, `tessera_io_queue_*{shard, class}`.
//!
//! The scheduler keeps its counters and histograms per shard, unshared
//! (`scheduler::io_stats()`); each shard copies a snapshot into its own
//! slot here when it refreshes its gauges, and a scrape turns the slots
//! into metric families. Histograms arrive as bucket counts, which the
//! `prometheus` crate's own histograms cannot take, hence a collector of
//! our own rather than pre-resolved children.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricType};
use scheduler::ioqueue::{Histogram, IoClassStats, HISTOGRAM_BOUNDS_NS};

use super::NAMESPACE;

/// One shard's latest snapshot.
pub type IoQueueSlot = Arc<Mutex<Vec<IoClassStats>>>;

/// The families: (name, help, type).
const FAMILIES: [(&str, &str, MetricType); 7] = [
    (
        "io_queue_ops_total",
        "IO requests completed, by class",
        MetricType::COUNTER,
    ),
    (
        "io_queue_bytes_total",
        "Bytes read or written by completed IO requests, by class",
        MetricType::COUNTER,
    ),
    (
        "io_queue_length",
        "IO requests waiting in the shard's queue, by class",
        MetricType::GAUGE,
    ),
    (
        "io_queue_in_flight",
        "IO requests dispatched to the disk and not yet complete, by class",
        MetricType::GAUGE,
    ),
    (
        "io_queue_shares",
        "Current shares of the IO class",
        MetricType::GAUGE,
    ),
    (
        "io_queue_queued_seconds",
        "Time IO requests waited in the queue before dispatch",
        MetricType::HISTOGRAM,
    ),
    (
        "io_queue_disk_seconds",
        "Time IO requests spent in the disk, from dispatch to completion",
        MetricType::HISTOGRAM,
    ),
];

/// Collects every shard's slot at scrape time; clones share the slots.
#[derive(Clone)]
pub struct IoQueueCollector {
    descs: Vec<Desc>,
    slots: Arc<Mutex<BTreeMap<String, IoQueueSlot>>>,
}

impl IoQueueCollector {
    pub fn new() -> Self {
        let descs = FAMILIES
            .iter()
            .map(|(name, help, _)| {
                Desc::new(
                    format!("{NAMESPACE}_{name}"),
                    (*help).to_owned(),
                    vec!["shard".to_owned(), "class".to_owned()],
                    Default::default(),
                )
                .expect("valid metric definition")
            })
            .collect();
        IoQueueCollector {
            descs,
            slots: Arc::default(),
        }
    }

    /// The slot of `shard`, created on first ask.
    pub fn slot(&self, shard: &str) -> IoQueueSlot {
        let mut slots = self.slots.lock().expect("metrics lock is never poisoned");
        slots.entry(shard.to_owned()).or_default().clone()
    }
}

impl Collector for IoQueueCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let slots: Vec<(String, Vec<IoClassStats>)> = {
            let slots = self.slots.lock().expect("metrics lock is never poisoned");
            slots
                .iter()
                .map(|(shard, slot)| {
                    let stats = slot.lock().expect("metrics lock is never poisoned");
                    (shard.clone(), stats.clone())
                })
                .collect()
        };
        FAMILIES
            .iter()
            .enumerate()
            .map(|(index, (name, help, kind))| {
                let mut family = proto::MetricFamily::default();
                family.set_name(format!("{NAMESPACE}_{name}"));
                family.set_help((*help).to_owned());
                family.set_field_type(*kind);
                let metrics = slots
                    .iter()
                    .flat_map(|(shard, stats)| {
                        stats.iter().map(move |class| sample(index, shard, class))
                    })
                    .collect();
                family.set_metric(metrics);
                family
            })
            .collect()
    }
}

fn label(name: &str, value: &str) -> proto::LabelPair {
    let mut pair = proto::LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

/// The sample of family `FAMILIES[index]` for one shard and class.
fn sample(index: usize, shard: &str, stats: &IoClassStats) -> proto::Metric {
    let mut metric = proto::Metric::default();
    metric.set_label(vec![
        label("class", stats.class.name()),
        label("shard", shard),
    ]);
    let counter = |value: u64| {
        let mut counter = proto::Counter::default();
        counter.set_value(value as f64);
        counter
    };
    let gauge = |value: u64| {
        let mut gauge = proto::Gauge::default();
        gauge.set_value(value as f64);
        gauge
    };
    match index {
        0 => metric.set_counter(counter(stats.ops)),
        1 => metric.set_counter(counter(stats.bytes)),
        2 => metric.set_gauge(gauge(stats.queue_length)),
        3 => metric.set_gauge(gauge(stats.in_flight)),
        4 => metric.set_gauge(gauge(u64::from(stats.shares))),
        5 => metric.set_histogram(histogram(&stats.queued_time)),
        _ => metric.set_histogram(histogram(&stats.disk_time)),
    }
    metric
}

fn histogram(source: &Histogram) -> proto::Histogram {
    let mut cumulative = 0;
    let buckets = HISTOGRAM_BOUNDS_NS
        .iter()
        .zip(source.counts)
        .map(|(bound_ns, count)| {
            cumulative += count;
            let mut bucket = proto::Bucket::default();
            bucket.set_cumulative_count(cumulative);
            bucket.set_upper_bound(*bound_ns as f64 / 1e9);
            bucket
        })
        .collect();
    let mut histogram = proto::Histogram::default();
    histogram.set_sample_count(source.count());
    histogram.set_sample_sum(source.sum_ns as f64 / 1e9);
    histogram.set_bucket(buckets);
    histogram
}
